"""Events between the nodes of a cluster, over PostgreSQL's LISTEN/NOTIFY.

    ClusterHub            the node's hub (events.hub.Hub): what it publishes
      message.created       goes out in seq order: at once when it is the
                            next seq; else the rows in between were stored by
                            another node (or a seq was lost to a rollback),
                            and the catch-up reads them first
      any other event       goes to local subscribers, and to the other nodes
                            through ``wiz_events`` (as JSON; in parts when
                            longer than a notification may be)
    Bus.listen            a connection that LISTENs, waited on by the loop
                          (its socket), never in a thread:
      wiz_jobs              wake the scheduler (a job became claimable)
      wiz_messages          another node stored messages: catch up
      wiz_events            another node's event: to local subscribers
      wiz_cancel            cancel a job this node runs
    Bus.catch_up          reads the messages after the last seq published,
                          in pages, and publishes them in order
    Bus.send_loop         the relayed events and cancel requests go out on
                          the write connection (``Database.notify``), before
                          the next write: a listener gets the deltas of a
                          reply before the reply's own wiz_messages notice;
                          this task sends what no write took along

Seq order is visibility order (messages.insert takes the seq under a lock
held to its commit), so the rows after the last seq published are always
the next ones, with no gap: a read never skips a message that commits later
with a smaller seq. A notification is only a hint to read: one lost while
the listening connection was down costs nothing, since the node catches up
(and looks at the queue) each time it connects again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread

from ..events.hub import Event, Hub, Subscription
from ..objects import Message
from ..services.tallies import Tallies
from ..store import notices
from .view import ClusterView

log = logging.getLogger(__name__)

# Messages per catch-up read.
PAGE = 500
# Seconds between attempts to connect again (the listening connection),
# doubling up to RECONNECT_CAP.
RECONNECT_FIRST = 0.5
RECONNECT_CAP = 10.0

# (after_seq, limit) -> stored messages with seq > after_seq, in increasing seq.
ReadAfter = Callable[[int, int], Awaitable[list[Message]]]


class ClusterHub(Hub):
    """A hub whose ``message.created`` events come out in seq order across
    the nodes, and whose other events reach the other nodes' subscribers."""

    def __init__(self, buffer: int, view: ClusterView, tallies: Tallies,
                 notify: Callable[[str, str], None]) -> None:
        super().__init__(buffer)
        self.notify = notify  # Database.notify
        self.view = view
        node_id = self.node_id = view.node_id
        self._own_prefix = node_id + "\n"
        self.tallies = tallies
        # Every message up to this seq has been published here.
        self.cursor = 0
        self._behind = anyio.Event()
        # Set when notices wait for a write to take them (Bus.send_loop).
        self.notified = anyio.Event()
        # Numbers the relayed events (notices.split).
        self.serial = 0

    def publish(self, event: Event) -> None:
        if event.seq is None:
            super().publish(event)
            self._relay(event)
        elif event.seq == self.cursor + 1:
            self.deliver(event)
        elif event.seq > self.cursor:
            self.behind()  # read from the table, in order, with what lies between

    def deliver(self, event: Event) -> None:
        """Publish message.created ``event``, the next after the cursor, here."""
        assert event.seq is not None
        self.cursor = event.seq
        super().publish(event)
        if event.seq > self.tallies.last_seq:
            self.tallies.apply([("message", event.seq)])

    def publish_here(self, event: Event) -> None:
        """Another node's event: to this node's subscribers only."""
        super().publish(event)

    def attach(self, sub: Subscription, last_seq: int) -> int:
        # The split: what the subscriber's history covers. Past the cursor if
        # the caller read rows not published yet (they then come live and the
        # feed skips them); never below it, since what was published while
        # the caller read is not in any live buffer for this subscription.
        return super().attach(sub, max(last_seq, self.cursor))

    def behind(self) -> None:
        """Messages were stored that this node has not published: catch up."""
        self._behind.set()

    async def wait_behind(self) -> None:
        await self._behind.wait()
        self._behind = anyio.Event()

    def send(self, channel: str, payload: str) -> None:
        """A notification for the other nodes (at most ``notices.MAX_PAYLOAD``
        bytes), sent before the next write."""
        self.notify(channel, payload)
        self.notified.set()

    def _relay(self, event: Event) -> None:
        # Only while another node was alive at the last lease renewal: a node
        # that joins since misses the live events of up to a third of a lease
        # (its messages come from the table all the same).
        if not self.view.others_alive:
            return
        # The node id first, outside the JSON: a node drops its own events
        # (every listener gets every notification) without decoding them.
        # The parts of a long one go out together, in one statement
        # (Database.notify: the next write takes every notice waiting).
        self.serial += 1
        for part in notices.split(self._own_prefix, json.dumps(
                {"m": event.method, "p": event.params, "c": event.conversation_id},
                separators=(",", ":")), self.serial):
            self.send(notices.EVENTS, part)


class Bus:
    """The tasks that connect a node's hub and scheduler to the others'."""

    def __init__(self, url: str, hub: ClusterHub, read_after: ReadAfter,
                 wake: Callable[[], None], cancel: Callable[[str], Awaitable[None]],
                 flush: Callable[[], Awaitable[None]]) -> None:
        self.url = url
        self.hub = hub
        self.flush = flush  # Database.flush
        self.read_after = read_after
        self.wake = wake
        self.cancel = cancel

    def request_cancel(self, node: str, job_id: str) -> None:
        self.hub.send(notices.CANCEL, json.dumps({"node": node, "job": job_id}))

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                  ) -> None:
        """The three tasks, until cancelled; ``started`` once the node listens
        (and has caught up with what was stored before)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.catch_up)
            tg.start_soon(self.send_loop)
            await tg.start(self.listen, tg)
            task_status.started()

    async def catch_up(self) -> None:
        hub = self.hub
        while True:
            await hub.wait_behind()
            while True:
                try:
                    page = await self.read_after(hub.cursor, PAGE)
                except Exception as exc:
                    log.warning("could not read new messages (%s); trying again", exc)
                    await anyio.sleep(RECONNECT_FIRST)
                    continue
                for message in page:
                    if message["seq"] > hub.cursor:
                        hub.deliver(Event("message.created", {"message": message},
                                          message["conversation_id"], message["seq"]))
                if len(page) < PAGE:
                    break

    async def listen(self, tg: anyio.abc.TaskGroup, *,
                     task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                     ) -> None:
        delay = RECONNECT_FIRST
        failing = False
        started = False
        while True:
            conn = None
            try:
                # Abandoned on shutdown: a connect to an unreachable server
                # may take connect_timeout, which shutdown must not wait for.
                conn = await anyio.to_thread.run_sync(notices.listen, self.url,
                                                      abandon_on_cancel=True)
                if failing:
                    log.info("listening to the other nodes again")
                failing, delay = False, RECONNECT_FIRST
                parts = notices.Parts()  # what a lost connection left half-sent is dropped
                # What was stored or queued while not listening: caught up now.
                self.hub.behind()
                self.wake()
                if not started:
                    started = True
                    task_status.started()
                while True:
                    await anyio.wait_readable(conn.fileno())
                    for channel, payload in notices.wait(conn, 0.0):
                        self._on_notice(tg, parts, channel, payload)
            except Exception as exc:
                if not failing:
                    log.warning("lost the connection that listens to the other nodes (%s); "
                                "connecting again", exc)
                failing = True
                if not started:  # the first connection failed: start anyway, retry later
                    started = True
                    task_status.started()
            finally:
                if conn is not None:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(conn.close)
            await anyio.sleep(delay)
            delay = min(delay * 2, RECONNECT_CAP)

    def _on_notice(self, tg: anyio.abc.TaskGroup, parts: notices.Parts, channel: str,
                   payload: str) -> None:
        if channel == notices.JOBS:
            if payload != self.hub.node_id:  # this node woke its scheduler itself
                self.wake()
        elif channel == notices.MESSAGES:
            if payload != self.hub.node_id:
                self.hub.behind()
        elif channel == notices.EVENTS:
            node, _, body = payload.partition("\n")
            if node == self.hub.node_id:
                return
            if not body.startswith("{"):  # a part of a long one
                joined = parts.add(node, body)
                if joined is None:
                    return
                body = joined
            event = _decode(body)
            if event is not None:
                self.hub.publish_here(Event(event["m"], event["p"], event.get("c")))
        elif channel == notices.CANCEL:
            asked = _decode(payload)
            if asked is not None and asked.get("node") == self.hub.node_id:
                tg.start_soon(self._cancel, str(asked.get("job")))

    async def _cancel(self, job_id: str) -> None:
        try:
            await self.cancel(job_id)
        except Exception as exc:
            log.warning("could not cancel job %s as another node asked: %s", job_id, exc)

    async def send_loop(self) -> None:
        hub = self.hub
        while True:
            await hub.notified.wait()
            hub.notified = anyio.Event()
            try:
                await self.flush()
            except Exception as exc:  # relayed events are live only
                log.warning("could not relay events to the other nodes: %s", exc)


def _decode(payload: str) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
