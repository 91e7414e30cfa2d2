"""Pure twin of ``_aio_c.pyx``: the asyncio layer's send and await helpers.

The same names and results; neither shortcut is taken (see the docstrings),
so the bytes on the wire and the values awaited are the same either way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable
from typing import Any, Callable

__all__ = ["DIRECT_SEND", "queued_next", "try_send"]

#: Whether try_send can send at all: the twin never does (see try_send).
DIRECT_SEND = False


def try_send(fd: int, chunks: list[bytes]) -> bytes | None:
    """Send ``chunks`` (bytes, in order) straight to the socket ``fd`` as far
    as it takes them without blocking.  Returns None when all of it went,
    else the bytes that did not, for the caller's transport to write.

    The twin sends nothing and returns them all (``DIRECT_SEND`` is False,
    so callers do not even ask).  The compiled module makes one
    ``send``/``sendmsg`` call, skipping the event loop's write path; on
    EAGAIN or any error it returns what is left, and the transport meets the
    error and reports it.
    """
    return b"".join(chunks)


def queued_next(queue: deque[Any], then: Callable[[Any], Awaitable[Any]], arg: Any) -> Awaitable[Any]:
    """The next item of ``queue``, awaited: its head once there is one, else
    whatever the coroutine ``then(arg)`` gives.  Nothing is taken before the
    awaitable's first step.

    The twin returns ``then(arg)`` itself: given a coroutine that takes the
    queue's head at its first step when there is one (as the asyncio layer's
    is), the same behaviour.  The compiled module returns a small awaitable
    that takes the head itself when there is one, without a coroutine, and
    calls ``then(arg)`` only when there is not.
    """
    return then(arg)
