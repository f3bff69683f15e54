"""The loader's request-limit semaphore (``loader._scheduler.Slots``): bounds, order, cancellation."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from loader._scheduler import Slots as _Slots

pytestmark = pytest.mark.anyio


async def _waiter(slots: _Slots, got: list[str], name: str, scope: anyio.CancelScope,
                  *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
    with scope:
        task_status.started()  # the caller resumes once this task is queued on the slots
        async with slots:
            got.append(name)
            await anyio.sleep(0.005)


@pytest.mark.parametrize("tokens", [1, 2])
async def test_never_more_holders_than_tokens_and_first_come_first_served(tokens: int) -> None:
    slots = _Slots(tokens)
    holding, most, order = 0, 0, []

    async def user(n: int, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        nonlocal holding, most
        task_status.started()
        async with slots:
            holding += 1
            most = max(most, holding)
            order.append(n)
            await anyio.sleep(0.01)
            holding -= 1

    async with anyio.create_task_group() as tg:
        for n in range(8):
            await tg.start(user, n)
    assert most == tokens and slots.free == tokens
    if tokens == 1:  # (with two, trio may run two tasks woken together in either order)
        assert order == list(range(8))
    assert sorted(order) == list(range(8))


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    slots, got = _Slots(1), []
    await slots.__aenter__()  # hold the only token
    async with anyio.create_task_group() as tg:
        doomed = anyio.CancelScope()
        await tg.start(_waiter, slots, got, "cancelled", doomed)
        await tg.start(_waiter, slots, got, "next", anyio.CancelScope())
        doomed.cancel()
        await anyio.sleep(0.01)
        assert got == []
        await slots.__aexit__(None, None, None)
    assert got == ["next"] and slots.free == 1


async def test_a_token_handed_to_a_cancelled_waiter_is_not_lost() -> None:
    slots, got = _Slots(1), []
    await slots.__aenter__()
    async with anyio.create_task_group() as tg:
        first = anyio.CancelScope()
        await tg.start(_waiter, slots, got, "first", first)
        await tg.start(_waiter, slots, got, "second", anyio.CancelScope())
        await slots.__aexit__(None, None, None)  # the token goes to "first" …
        first.cancel()  # … cancelled before it runs (asyncio cancels it; trio lets it finish)
    assert got[-1] == "second" and slots.free == 1
