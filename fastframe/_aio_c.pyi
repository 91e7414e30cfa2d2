"""Typed surface of the compiled ``_aio_c`` (see ``_aio_py.py``, its twin)."""

from collections import deque
from collections.abc import Awaitable, Generator
from typing import Any, Callable

DIRECT_SEND: bool

def try_send(fd: int, chunks: list[bytes]) -> bytes | None:
    """Send ``chunks`` straight to socket ``fd`` as far as it takes them now;
    None when all went, else the bytes left for the transport."""

class QueuedNext:
    """The awaitable ``queued_next`` returns (see there); a coroutine by
    protocol: ``send``, ``throw``, ``close``."""

    def __await__(self) -> Generator[Any, None, Any]: ...
    def __next__(self) -> Any: ...
    def send(self, value: Any) -> Any: ...
    def throw(self, typ: Any, val: Any = ..., tb: Any = ...) -> Any: ...
    def close(self) -> None: ...

def queued_next(queue: deque[Any], then: Callable[[Any], Awaitable[Any]], arg: Any) -> Awaitable[Any]:
    """The next item of ``queue``, awaited: its head at the awaitable's first
    step when there is one (no coroutine made), else what the coroutine
    ``then(arg)`` gives."""
