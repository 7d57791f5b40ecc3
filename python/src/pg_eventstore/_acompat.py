"""The few things that differ between asyncio and threads, under names tools/async_to_sync.py maps.

Async sources use AEvent and asleep; their generated sync twins use Event and
sleep. Hand-written, both halves side by side.
"""

from __future__ import annotations

import asyncio
import threading
import time

AEvent = asyncio.Event
Event = threading.Event


async def asleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


__all__ = ["AEvent", "Event", "asleep", "sleep"]
