"""A clock the test moves: the client's sleeps advance it, and the fake server reads it."""

import asyncio
from datetime import datetime, timedelta


class FakeClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the fake clock needs an aware start")
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        # Let other tasks (the loopback server) run, as a real sleep would.
        await asyncio.sleep(0)

    def advance(self, delta: timedelta) -> None:
        self.now += delta
