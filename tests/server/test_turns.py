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
        first = [asyncio.ensure_future(batcher.add([i])) for i in range(3)]  # one turn: one send
        await asyncio.sleep(0.01)
        assert sender.batches == [[0, 1, 2]]
        began = loop.time()
        later = []
        for i in range(3, 6):  # three more turns while the first send is out
            later.append(asyncio.ensure_future(batcher.add([i])))
            await asyncio.sleep(0)
        later[0].cancel()  # a request gone: the send its items are in still happens
        await asyncio.sleep(0.01)
        assert sender.batches == [[0, 1, 2]] and not any(f.done() for f in first)
        sender.gate.set()
        await asyncio.gather(*first, *later[1:])
        assert sender.batches == [[0, 1, 2], [3, 4, 5]]
        assert sender.most_in_flight == 1
        assert began <= sender.since[1] <= began + 0.01  # the first of the batch's items, not its send
        assert (batcher.sends, batcher.items) == (2, 6)
        await batcher.add([6])  # idle again: the next add gets a send of its own
        assert sender.batches[-1] == [6]

    asyncio.run(main())
