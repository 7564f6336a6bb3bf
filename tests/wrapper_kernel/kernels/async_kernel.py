"""A kernel whose handlers are all ``async def``: the base runs them to completion."""

from __future__ import annotations

import asyncio
from typing import Any

from wrapper_kernel import Kernel


class AsyncKernel(Kernel):
    implementation = "async"
    language = "text"

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        if code.startswith("sleep"):
            await asyncio.sleep(float(code.split()[1]))
        elif code.startswith("nap"):  # says so first: a test knows the await has begun
            self.print("napping")
            await asyncio.sleep(float(code.split()[1]))
        elif code == "password":
            secret = self.getpass("secret: ")
            self.print(f"got {len(secret)} characters")
        elif code == "fail":
            raise ValueError("async failure")
        self.print(f"async {code}")
        self.display({"text/plain": "shown"}, display_id="d1")
        self.display({"text/plain": "updated"}, display_id="d1", update=True)
        return {"status": "ok", "execution_count": self.execution_count}

    async def do_is_complete(self, code: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"status": "complete" if code.endswith(";") else "incomplete", "indent": ""}

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"status": "ok"}


if __name__ == "__main__":
    AsyncKernel.launch_instance()
