"""_aio.queued_next: the awaitable behind ``WebSocket.__anext__`` when a
message is already queued.  Both implementations, the same behaviour: the queue's head
at the first step, else whatever ``then(arg)`` gives; nothing taken before
the first step; a coroutine by protocol, so tasks and wait_for run it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections import deque
from types import ModuleType
from typing import Any

import pytest


class Owner:
    """A stand-in for WebSocket: its coroutine takes the head once there is
    one, waiting for it otherwise (as WebSocket._next_message does)."""

    def __init__(self, queue: deque[Any]) -> None:
        self.queue = queue
        self.calls = 0
        self.arrived: asyncio.Event | None = None

    @staticmethod
    async def then(owner: Owner) -> Any:
        owner.calls += 1
        while not owner.queue:
            owner.arrived = asyncio.Event()
            await owner.arrived.wait()
        return owner.queue.popleft()

    def put(self, item: Any) -> None:
        self.queue.append(item)
        if self.arrived is not None:
            self.arrived.set()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_head_without_the_coroutine(aio: ModuleType) -> None:
    q: deque[Any] = deque([b"a", "b", (1, 2), None, ValueError("x")])
    o = Owner(q)

    async def main() -> list[Any]:
        return [await aio.queued_next(q, Owner.then, o) for _ in range(5)]

    got = run(main())
    assert got[:4] == [b"a", "b", (1, 2), None]  # a tuple stays one value
    assert isinstance(got[4], ValueError)  # an exception is a value, not raised
    assert not q
    if aio.__name__.endswith("_c"):
        assert o.calls == 0, "the compiled awaitable takes the head itself"


def test_empty_queue_waits_in_then(aio: ModuleType) -> None:
    q: deque[Any] = deque()
    o = Owner(q)

    async def main() -> Any:
        asyncio.get_running_loop().call_later(0.01, o.put, "late")
        return await aio.queued_next(q, Owner.then, o)

    assert run(main()) == "late"
    assert o.calls == 1


def test_nothing_is_taken_before_the_first_step(aio: ModuleType) -> None:
    q: deque[Any] = deque(["kept"])
    o = Owner(q)
    aio.queued_next(q, Owner.then, o).close()
    with pytest.warns(RuntimeWarning) if aio.__name__.endswith("_py") else contextlib.nullcontext():
        aw = aio.queued_next(q, Owner.then, o)
        del aw
        gc.collect()
    assert list(q) == ["kept"]


def test_the_queue_is_read_at_the_first_step_not_at_creation(aio: ModuleType) -> None:
    async def main() -> tuple[Any, Any]:
        q: deque[Any] = deque()
        o = Owner(q)
        aw = aio.queued_next(q, Owner.then, o)
        q.append("arrived in between")
        first = await aw
        q.append("x")
        aw = aio.queued_next(q, Owner.then, o)
        q.clear()  # another reader took it
        asyncio.get_running_loop().call_later(0.01, o.put, "then")
        return first, await aw

    assert run(main()) == ("arrived in between", "then")


def test_run_by_a_task_and_by_wait_for(aio: ModuleType) -> None:
    async def main() -> None:
        q: deque[Any] = deque([1, 2])
        o = Owner(q)
        aw = aio.queued_next(q, Owner.then, o)
        assert asyncio.iscoroutine(aw)  # what create_task and ensure_future ask
        aw.close()
        assert await asyncio.ensure_future(aio.queued_next(q, Owner.then, o)) == 1
        assert await asyncio.wait_for(aio.queued_next(q, Owner.then, o), 1) == 2
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(aio.queued_next(q, Owner.then, o), 0.01)
        o.arrived = None
        o.put(3)
        assert list(q) == [3], "a timed-out wait took nothing"

    run(main())


def test_cancelled_while_waiting_in_then(aio: ModuleType) -> None:
    async def main() -> None:
        q: deque[Any] = deque()
        o = Owner(q)
        task = asyncio.ensure_future(aio.queued_next(q, Owner.then, o))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        q.append("after")
        assert await aio.queued_next(q, Owner.then, o) == "after"

    run(main())


def test_coroutine_protocol(aio: ModuleType) -> None:
    q: deque[Any] = deque(["v"])
    o = Owner(q)
    aw = aio.queued_next(q, Owner.then, o)
    with pytest.raises(TypeError):
        aw.send("not None")  # as a coroutine that has not started
    aw.close()
    assert list(q) == ["v"]
    aw = aio.queued_next(q, Owner.then, o)
    with pytest.raises(StopIteration) as stop:
        aw.send(None)
    assert stop.value.value == "v"
    with pytest.raises(RuntimeError):
        aw.send(None)  # awaited already
    q.append("w")
    aw = aio.queued_next(q, Owner.then, o)
    with pytest.raises(KeyError):
        aw.throw(KeyError("k"))  # thrown in before the start: raised, nothing taken
    assert list(q) == ["w"]
    it = aio.queued_next(q, Owner.then, o).__await__()
    with pytest.raises(StopIteration) as stop:
        next(it)
    assert stop.value.value == "w"


def test_throw_reaches_then_while_it_waits(aio: ModuleType) -> None:
    seen: list[str] = []

    async def then(arg: Any) -> str:
        try:
            await asyncio.Event().wait()
        except KeyError:
            seen.append("caught")
            return "recovered"
        return "never"

    async def main() -> None:
        aw = aio.queued_next(deque(), then, None)
        fut = aw.send(None)  # runs then() up to its wait: yields its future
        assert asyncio.isfuture(fut)
        with pytest.raises(StopIteration) as stop:
            aw.throw(KeyError("k"))
        assert stop.value.value == "recovered" and seen == ["caught"]
        fut.cancel()

    run(main())


def test_no_reference_leaks(c_aio: ModuleType) -> None:
    item = object()
    q: deque[Any] = deque()
    o = Owner(q)

    async def main() -> None:
        for _ in range(2000):
            q.append(item)
            assert await c_aio.queued_next(q, Owner.then, o) is item

    before = sys.getrefcount(item)
    run(main())
    gc.collect()
    assert sys.getrefcount(item) == before


def test_not_constructible_directly(c_aio: ModuleType) -> None:
    with pytest.raises(TypeError):
        c_aio.QueuedNext(deque(), Owner.then, None)


def test_closed_from_inside_the_coroutine_it_runs(aio: ModuleType) -> None:
    # The coroutine that queued_next runs closes the awaitable while it is
    # running: refused as for any running coroutine, and nothing breaks.
    holder: dict[str, Any] = {}

    async def then(arg: Any) -> str:
        try:
            holder["aw"].close()
        except ValueError as exc:  # "coroutine already executing"
            return f"refused: {type(exc).__name__}"
        return "closed"

    async def main() -> Any:
        holder["aw"] = aw = aio.queued_next(deque(), then, None)
        return await aw

    assert run(main()) == "refused: ValueError"
