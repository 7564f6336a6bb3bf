"""The private event loop a blocking client drives its asyncio client on.

:class:`LoopThread` runs an asyncio loop in a daemon thread (so a blocking client works in a
plain script and inside an already-running loop alike); ``_ThreadWaiter`` is a reply slot that
the loop thread resolves and the caller's thread waits on, without a ``concurrent.futures``
round trip per request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]


T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running forever in a daemon thread.

    :meth:`run` submits a coroutine from any other thread and blocks for its result.
    """

    def __init__(self, name: str = "kernel-mgmt-client") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()

    def in_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def run(
        self, coro: Coroutine[Any, Any, T], timeout: float | None = None, what: str = "call"
    ) -> T:
        """Run *coro* on the loop and return its result; TimeoutError after *timeout* s."""
        if self.in_thread():
            coro.close()
            raise RuntimeError(
                f"blocking {what} called from the client's own event-loop thread (e.g. in a "
                "message handler) would deadlock; use the asyncio client there"
            )
        if not self.alive:
            coro.close()
            raise RuntimeError("the client's event loop is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            if fut.done():  # the coroutine itself raised TimeoutError
                raise
            fut.cancel()
            raise TimeoutError(f"{what} timed out after {timeout} s") from None
        except BaseException:  # KeyboardInterrupt in the caller: stop the work too
            fut.cancel()
            raise

    def call_soon(self, func: Callable[..., Any], *args: Any) -> None:
        """Schedule *func(*args)* on the loop (from any thread, including the loop's own)."""
        if self.in_thread():
            self.loop.call_soon(func, *args)
        else:
            self.loop.call_soon_threadsafe(func, *args)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (cancelling its tasks) and join the thread."""
        if self.loop.is_closed():
            return
        if self.in_thread():
            self.loop.stop()
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:
            return  # closed meanwhile
        self.thread.join(timeout)


class _ThreadWaiter:
    """A reply slot resolved on the loop thread and waited for on the caller's thread.

    Registered in the asyncio client's pending table in place of a future: the receive
    callback resolves it directly, releasing a lock the caller blocks on. No asyncio
    future, done-callback or extra loop iteration stands between reply and caller.
    Resolving twice (a reply racing a death) keeps the first outcome.
    """

    __slots__ = ("_error", "_lock", "_state", "_value", "jupyter_msg_id", "source")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._state = 0  # 0 pending, 1 result, 2 exception
        self._value: Any = None
        self._error: BaseException | None = None
        self.jupyter_msg_id = ""
        #: The asyncio future this waiter mirrors, when the request needed one.
        self.source: asyncio.Future[Any] | None = None

    def done(self) -> bool:
        return self._state != 0

    def set_result(self, value: Any) -> None:
        if self._state == 0:
            self._value, self._state = value, 1
            self._wake()

    def set_exception(self, error: BaseException) -> None:
        if self._state == 0:
            self._error, self._state = error, 2
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # two threads resolved it at once
            self._lock.release()

    def cancel(self) -> bool:
        self.set_exception(asyncio.CancelledError())
        return True

    def exception(self) -> BaseException | None:
        return self._error

    def wait(self, timeout: float) -> bool:
        """Block up to *timeout* seconds; True once resolved."""
        return self._state != 0 or self._lock.acquire(timeout=timeout)

    def result(self) -> Any:
        if self._state == 2 and self._error is not None:
            raise self._error
        return self._value
