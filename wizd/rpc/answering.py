"""The tasks that answer one connection's lines.

Each line read goes to an answering task waiting for one, or to a new task
while fewer than ``limit`` run; past that, reading waits until a task is
free. A task answers line after line: starting a task (anyio's task handle
and cancel scope) costs several times handing a line to one that waits.

The hand-off is on every call's path, so it is two attributes and an event
rather than a memory object stream, whose every receive also records the
receiving task for anyio's debugging and builds a generic item holder.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup


class _Idle:
    """A task waiting for its next line (None: no more lines)."""

    __slots__ = ("line", "ready")

    def __init__(self) -> None:
        self.line: bytes | None = None
        self.ready = anyio.Event()


class Answerers:
    def __init__(self, answer: Callable[[bytes], Awaitable[None]], task_group: TaskGroup,
                 limit: int) -> None:
        self._answer = answer
        self._task_group = task_group
        self._limit = limit
        self._running = 0
        self._idle: list[_Idle] = []
        self._freed: anyio.Event | None = None  # reading waits for a free task
        self._closed = False

    async def put(self, line: bytes) -> None:
        """Hand ``line`` to a task; waits while ``limit`` tasks are busy."""
        while not self._idle and self._running >= self._limit:
            self._freed = anyio.Event()
            await self._freed.wait()
        if self._idle:
            idle = self._idle.pop()
            idle.line = line
            idle.ready.set()
        else:
            self._running += 1
            self._task_group.start_soon(self._run, line, name="rpc calls")

    def close(self) -> None:
        """No more lines: idle tasks end now, busy ones after their call."""
        self._closed = True
        for idle in self._idle:
            idle.ready.set()
        self._idle.clear()

    async def _run(self, line: bytes | None) -> None:
        while line is not None:
            await self._answer(line)
            if self._closed:
                return
            idle = _Idle()
            self._idle.append(idle)
            if self._freed is not None:
                self._freed.set()
                self._freed = None
            await idle.ready.wait()
            line = idle.line
