"""TurnBatcher: one send per turn, one send in flight, what arrives meanwhile goes out together next."""

from __future__ import annotations

import asyncio

from threadline.server.turns import TurnBatcher


class Sender:
    """A send that records its batches and, while ``gate`` is clear, does not finish."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.since: list[float] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate = asyncio.Event()

    async def __call__(self, items: list[int], since: float) -> None:
        self.batches.append(items)
        self.since.append(since)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await self.gate.wait()
        self.in_flight -= 1


def test_one_send_in_flight_gathers_the_turns_meanwhile() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sender = Sender()
        batcher = TurnBatcher(sender)
        for i in range(3):  # one turn: one send; each add returns before it is done
            await batcher.add([i])
        assert sender.batches == []  # the send starts at the end of the turn
        await asyncio.sleep(0.01)
        assert sender.batches == [[0, 1, 2]] and sender.in_flight == 1
        began = loop.time()
        for i in range(3, 6):  # three more turns while the first send is out
            await batcher.add([i])
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert sender.batches == [[0, 1, 2]]
        drained = asyncio.ensure_future(batcher.drain())
        await asyncio.sleep(0.01)
        assert not drained.done()  # [3, 4, 5] is not sent yet
        sender.gate.set()
        await drained
        assert sender.batches == [[0, 1, 2], [3, 4, 5]] and sender.in_flight == 0
        assert sender.most_in_flight == 1
        assert began <= sender.since[1] <= began + 0.01  # the first of the batch's items, not its send
        assert (batcher.sends, batcher.items) == (2, 6)
        await batcher.add([6])  # idle again: the next add gets a send of its own
        await batcher.drain()
        assert sender.batches[-1] == [6]
        await batcher.drain()  # nothing handed over: returns at once

    asyncio.run(main())


def test_past_the_backlog_an_add_waits_for_the_send_that_carries_it() -> None:
    async def main() -> None:
        sender = Sender()
        batcher = TurnBatcher(sender, backlog=4)
        await batcher.add([0, 1])
        await asyncio.sleep(0.01)
        assert sender.batches == [[0, 1]]  # out, held by the gate
        await batcher.add([2, 3])
        await batcher.add([4, 5])  # 4 wait for the next send: at the line, returns at once
        over = asyncio.ensure_future(batcher.add([6]))  # 5 wait: this one waits for their send
        gone = asyncio.ensure_future(batcher.add([7]))
        await asyncio.sleep(0.01)
        assert not over.done() and not gone.done()
        gone.cancel()  # its request gone: its items still go out with the others
        sender.gate.set()
        await over
        assert sender.batches == [[0, 1], [2, 3, 4, 5, 6, 7]]
        assert over.done() and gone.cancelled()
        await batcher.drain()
        assert (batcher.sends, batcher.items) == (2, 8)

    asyncio.run(main())


def test_drain_waits_for_the_send_out_and_the_one_gathered_behind_it() -> None:
    async def main() -> None:
        sender = Sender()
        batcher = TurnBatcher(sender)
        await batcher.add([0])
        await asyncio.sleep(0.01)  # [0] is out; nothing else is handed over
        alone = asyncio.ensure_future(batcher.drain())
        await asyncio.sleep(0.01)
        assert not alone.done()  # the send out is waited for too, not only what waits for the next one
        await batcher.add([1])  # waits for [0]'s send to end
        drained = asyncio.ensure_future(batcher.drain())
        await asyncio.sleep(0.01)
        assert not drained.done()
        sender.gate.set()
        await asyncio.gather(alone, drained)
        assert sender.batches == [[0], [1]] and sender.in_flight == 0

    asyncio.run(main())
