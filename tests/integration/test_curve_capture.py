"""What someone reading loopback sees: a raw TCP proxy sits between our client and the kernel
(the client connects to the proxy's ports) and records every byte in both directions.

With encryption on, neither the code nor its output appears in those bytes; with it off
(``transport_encryption = "disabled"`` in the finder's config) both do, which shows the
capture really sees the traffic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .curve_support import (
    KERNELS,
    RecordingProxy,
    assert_capture,
    code_for,
    curve_env,  # noqa: F401  (fixture, used below)
    finder_for,
    launched,
    round_trip,
)

pytestmark = pytest.mark.usefixtures("curve_env")


@pytest.mark.parametrize("policy", ["auto", "disabled"])
@pytest.mark.parametrize("kernel", KERNELS)
async def test_code_and_output_hidden_on_the_wire(tmp_path: Path, kernel: str, policy: str) -> None:
    finder = finder_for(tmp_path, {"transport_encryption": policy})
    marker = "wiretap-" + "7f3a9c"
    code, expected = code_for(kernel, marker)
    async with launched(finder, kernel) as (info, _km):
        assert ("curve_publickey" in info) == (policy == "auto")
        proxy = RecordingProxy(info)
        via_proxy = await proxy.start()
        try:
            status, out = await round_trip("asyncio", via_proxy, code)
        finally:
            await proxy.close()
    assert (status, out) == ("ok", expected)
    assert_capture(proxy, info, code, expected, policy)
