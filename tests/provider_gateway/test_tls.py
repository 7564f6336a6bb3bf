"""An https/wss gateway: certificates checked by default, ca_certs and validate_cert honoured."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import kernel_mgmt_provider_gateway as provider
from kernel_mgmt import run_kernel_blocking
from kernel_mgmt.discovery import KernelFinder
from kernel_mgmt_provider_gateway import _discover

from .conftest import Gateway


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Path]]:
    """A Kernel Gateway serving https with a self-signed certificate for 127.0.0.1."""
    base = tmp_path_factory.mktemp("tls")
    cert, key = base / "cert.pem", base / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    gw = Gateway(
        "kg-tls",
        base / "gw",
        [f"--KernelGatewayApp.certfile={cert}", f"--KernelGatewayApp.keyfile={key}"],
    )
    gw.scheme = "https"
    gw.start()
    try:
        yield gw, cert
    finally:
        try:
            gw.delete_all()
        finally:
            gw.stop()


@pytest.fixture
def tls(
    tls_gateway: tuple[Gateway, Path], local_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Gateway, Path]]:
    gw, cert = tls_gateway
    monkeypatch.setenv("KERNEL_MGMT_GATEWAY_URL", gw.url)
    monkeypatch.setenv("KERNEL_MGMT_GATEWAY_TOKEN", gw.token)
    yield gw, cert
    assert gw.kernels() == []


def _configure(section: dict) -> KernelFinder:
    _discover.clear_cache()
    provider.load_config({"gateway": section})
    return KernelFinder.from_entrypoints({"gateway": section})


def test_unknown_certificate_is_refused(tls: tuple[Gateway, Path]) -> None:
    gw, _cert = tls
    finder = _configure({})
    assert not [k for k, _ in finder.find_kernels() if k.startswith("gateway/")]
    info = next(i for i in finder.providers if i.id == "gateway")
    assert info.status == "failed"
    assert f"cannot reach gateway {gw.url}" in info.reason
    assert "CERTIFICATE_VERIFY_FAILED" in info.reason


def test_ca_certs_over_https_and_wss(tls: tuple[Gateway, Path]) -> None:
    _gw, cert = tls
    finder = _configure({"ca_certs": str(cert)})
    assert "gateway/python3" in dict(finder.find_kernels())
    outputs: list = []
    with run_kernel_blocking("gateway/python3", finder=finder) as kc:
        reply = kc.execute_interactive("print(6 * 7)", output_hook=outputs.append, timeout=60)
    assert reply.content["status"] == "ok"
    assert any(m.content.get("text") == "42\n" for m in outputs)


def test_validate_cert_false(tls: tuple[Gateway, Path]) -> None:
    finder = _configure({"validate_cert": False})
    assert "gateway/python3" in dict(finder.find_kernels())
