"""The MCP servers wizd runs: started on first use, kept running, restarted on
the next use after they died, stopped on shutdown.

Each running server is one task in the manager's task group (``run``, started
by ``app.py`` in the daemon's root task group): the task opens the connection
(``connect``), hands its session to whoever asked, and holds it open until it
is told to stop. The contexts of ``mcp`` (its task groups, the subprocess)
are entered and left by that one task, as anyio requires; callers only send
requests through the session, from their own tasks.

Stopping is cooperative: a server task runs under a shielded cancel scope,
so the daemon's shutdown does not cut ``mcp``'s stop sequence short (close
stdin, wait 2 s, end the process group): ``run`` sets every server's stop
event when it is cancelled, and its task group waits for them.

Secrets: a stdio server's ``env`` maps its variables to names of wizd's own,
read here when the server starts; the values go to the process only, never
to a log, an error or a result.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import shlex
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.abc
import anyio.to_thread

from ..errors import McpServerError

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp_types import CallToolResult, Tool

log = logging.getLogger(__name__)

T = TypeVar("T")

# Defaults: how long a server may take to start and answer initialize, and
# to answer one request (tools/list, tools/call unless the caller says).
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServerSpec:
    """What the manager needs to run one server (``services.mcp`` builds it
    from its row). ``env``: the server's variable -> the name of wizd's."""

    id: str
    name: str
    transport: Literal["stdio", "http"]
    command: tuple[str, ...] = ()
    url: str | None = None
    env: tuple[tuple[str, str], ...] = ()


class ToolInfo(TypedDict):
    """A tool as its server describes it."""

    name: str
    description: str | None
    input_schema: dict[str, object]


@dataclass(eq=False)
class _Running:
    spec: ServerSpec
    stop: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    session: ClientSession | None = None
    stopped: bool = False  # on purpose (``stop``, shutdown): no restart for its callers


class McpManager:
    """The running MCP servers, by server id."""

    def __init__(self, *, start_timeout: float = START_TIMEOUT,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self._tg: anyio.abc.TaskGroup | None = None
        self._running: dict[str, _Running] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._starting: set[anyio.CancelScope] = set()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                  ) -> None:
        """Host the server tasks until cancelled; then stop every server and
        return once all have stopped."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self._tg = None
                for running in self._running.values():
                    running.stopped = True
                    running.stop.set()
                for scope in self._starting:  # none is waited for: no one will use it
                    scope.cancel()

    def is_running(self, server_id: str) -> bool:
        """Whether server ``server_id`` has been started and not told to stop
        (a process that died unnoticed still counts until its next use)."""
        running = self._running.get(server_id)
        return running is not None and not running.done.is_set()

    async def tools(self, spec: ServerSpec) -> list[ToolInfo]:
        """The tools of server ``spec``, started if it is not running. A server
        found dead is restarted and asked again, once.

        Raises McpServerError: it cannot start, answers nothing within
        ``request_timeout``, or fails.
        """
        async def list_all(session: ClientSession) -> list[Tool]:
            tools: list[Tool] = []
            result = await session.list_tools()
            tools.extend(result.tools)
            while result.next_cursor is not None:
                from mcp_types import PaginatedRequestParams
                result = await session.list_tools(
                    params=PaginatedRequestParams(cursor=result.next_cursor))
                tools.extend(result.tools)
            return tools

        found = await self._use(spec, list_all, "listing its tools", retry=True,
                                time_limit=self.request_timeout)
        return [{"name": t.name, "description": t.description,
                 "input_schema": dict(t.input_schema)} for t in found]

    async def call_tool(self, spec: ServerSpec, tool: str, arguments: Mapping[str, Any], *,
                        time_limit: float | None = None) -> CallToolResult:
        """Call ``tool`` of server ``spec`` once (never retried: a tool may
        have side effects). A tool's own failure is in the result
        (``is_error``). Raises McpServerError: the server cannot start, the
        call takes longer than ``time_limit`` seconds (default ``request_timeout``), or
        the server fails or dies during the call (it is started again on its
        next use).
        """
        limit = self.request_timeout if time_limit is None else time_limit
        return await self._use(spec, lambda s: s.call_tool(tool, dict(arguments)),
                               f"calling {tool}", retry=False, time_limit=limit)

    async def stop(self, server_id: str) -> None:
        """Stop server ``server_id`` if it runs, and wait until it has stopped."""
        async with self._lock(server_id):
            running = self._running.pop(server_id, None)
            if running is not None:
                running.stopped = True
                running.stop.set()
                await running.done.wait()

    # -- inside ------------------------------------------------------------------

    def _lock(self, server_id: str) -> anyio.Lock:
        return self._locks.setdefault(server_id, anyio.Lock())

    async def _use(self, spec: ServerSpec, request: Callable[[ClientSession], Awaitable[T]],
                   what: str, *, retry: bool, time_limit: float) -> T:
        for attempt in (1, 2):
            running = await self._start(spec)  # imports .connect: the names below exist
            from .connect import CONNECTION_CLOSED, MCPError

            assert running.session is not None
            try:
                with anyio.fail_after(time_limit):
                    return await request(running.session)
            except TimeoutError:
                raise McpServerError(spec.name, f"no answer within {time_limit:g} s {what}",
                                     sent=True) from None
            except MCPError as exc:
                if exc.code != CONNECTION_CLOSED:
                    raise McpServerError(spec.name, f"{what} failed: {exc.message}") from None
                if running.stopped:  # by ``stop`` (removed, or wizd stopping): not again
                    raise McpServerError(spec.name, f"stopped while {what}", sent=True) from None
                # It died (or closed the connection): the next use starts it anew.
                log.warning("MCP server %s closed the connection (%s); it will be started "
                            "again", spec.name, what)
                await self._forget(running)
                if not retry or attempt == 2:
                    raise McpServerError(spec.name, f"the server closed the connection while "
                                         f"{what} (it exited?); it is started again on the "
                                         "next use", sent=True) from None
        raise AssertionError("unreachable")

    async def _forget(self, running: _Running) -> None:
        """Let ``running`` go (its server died); the next use starts another."""
        async with self._lock(running.spec.id):
            if self._running.get(running.spec.id) is running:
                del self._running[running.spec.id]
        running.stop.set()
        await running.done.wait()

    async def _start(self, spec: ServerSpec) -> _Running:
        """The running ``spec``, started now if need be."""
        async with self._lock(spec.id):
            running = self._running.get(spec.id)
            if running is not None and running.spec == spec and not running.done.is_set():
                return running
            if running is not None:  # ended, or its spec changed
                del self._running[spec.id]
                running.stop.set()
                await running.done.wait()
            if self._tg is None:
                raise McpServerError(spec.name, "wizd is not running MCP servers (shutting down)")
            fresh: _Running = await self._tg.start(self._serve, spec)
            self._running[spec.id] = fresh
            return fresh

    async def _serve(self, spec: ServerSpec, *,
                     task_status: anyio.abc.TaskStatus[_Running]) -> None:
        """Run one server until told to stop. Errors before it is ready go to
        the caller of ``tg.start``; a failure later is logged, never raised
        into the manager's task group (it would end the daemon)."""
        connect = (await _connect_module()).connect
        running = _Running(spec)
        started = False
        # Shielded: the daemon's shutdown stops a running server through
        # ``stop``, so that mcp's own stop sequence runs whole; a server still
        # starting then is cancelled (``run``), as is one past its deadline.
        scope = anyio.CancelScope(shield=True)
        try:
            env = _resolve_env(spec)  # values stay in ``env``: never logged
            log.info("starting MCP server %s (%s)", spec.name, _where(spec))
            deadline = scope.deadline = anyio.current_time() + self.start_timeout
            self._starting.add(scope)
            with scope:
                async with connect(spec.transport, spec.command, spec.url, env) as session:
                    self._starting.discard(scope)
                    scope.deadline = math.inf
                    running.session = session
                    started = True
                    task_status.started(running)
                    log.info("MCP server %s ready", spec.name)
                    await running.stop.wait()
            if not started:
                if anyio.current_time() >= deadline:
                    raise McpServerError(spec.name, f"did not start within "
                                         f"{self.start_timeout:g} s ({_where(spec)})")
                raise McpServerError(spec.name, "start cancelled: wizd is stopping")
            log.info("MCP server %s stopped", spec.name)
        except McpServerError:  # raised before it started: for the caller
            raise
        except OSError as exc:
            if started:
                log.warning("MCP server %s failed: %s", spec.name, exc)
                return
            reason = exc.strerror or str(exc)
            raise McpServerError(spec.name, f"cannot start: {reason} ({_where(spec)})") from None
        except Exception as exc:
            if started:
                log.warning("MCP server %s ended: %s", spec.name, _one_line(exc))
                return
            stderr = "; its stderr is in wizd's log" if spec.transport == "stdio" else ""
            raise McpServerError(spec.name, f"failed to start: {_one_line(exc)} "
                                 f"({_where(spec)}{stderr})") from None
        finally:
            self._starting.discard(scope)
            running.done.set()


async def _connect_module() -> ModuleType:
    """``wizd.mcp.connect``, imported in a worker thread the first time: importing
    ``mcp`` takes a second or more of CPU, which must not stall the event loop."""
    name = f"{__package__}.connect"
    module = sys.modules.get(name)
    if module is None:
        module = await anyio.to_thread.run_sync(importlib.import_module, name)
    return module


def _resolve_env(spec: ServerSpec) -> dict[str, str]:
    """The server's variables, their values read from wizd's environment now.
    Raises McpServerError naming (never showing) a variable that is not set."""
    env: dict[str, str] = {}
    for name, source in spec.env:
        value = os.environ.get(source)
        if value is None:
            raise McpServerError(spec.name, f"cannot start: ${source} (for {name}) is not set "
                                 "in wizd's environment")
        env[name] = value
    return env


def _where(spec: ServerSpec) -> str:
    if spec.transport == "stdio":
        return f"command: {shlex.join(spec.command)}"
    # The URL is how an HTTP server authenticates (a token in its query or
    # user part): errors, and so the model and the conversation, show neither.
    parts = urlsplit(spec.url or "")
    host = parts.netloc.rpartition("@")[2]
    return f"url: {urlunsplit((parts.scheme, host, parts.path, '', ''))}"


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_one_line(e) for e in exc.exceptions)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
