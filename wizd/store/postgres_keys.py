"""Names the store's PostgreSQL statements share, in a module that imports
nothing (the store's modules load it on SQLite too, where psycopg must not
be imported): advisory lock keys and the database's clock."""

from __future__ import annotations

# Single-key advisory locks: migrations (nodes starting together) and the
# message seq (see messages.insert: seq order is commit order).
MIGRATE_LOCK = 0x7769_7A00
SEQ_LOCK = 0x7769_7A01
# What nodes do once per database at start (the local user, the built-in
# provider): nodes starting together take turns (database.once_per_database).
START_LOCK = 0x7769_7A05
# Two-key advisory locks (a space of their own): (class, hashtext(value)).
GROUP_LOCK_CLASS = 0x7769_7A03  # a job group's head marks (store.jobs)
NODE_LOCK_CLASS = 0x7769_7A04  # a node id, held by the node's write connection

# The key of a connection's info dict that holds its transaction's BEGIN
# until the first statement takes it along (postgres.defer_begin).
PENDING_BEGIN = "wiz_pending_begin"
# ... and notes there that the BEGIN failed on a connection the server dropped.
STALE_BEGIN = "wiz_stale_begin"
# ... and holds the statements whose results nobody reads, until the next
# statement or the COMMIT takes them along (database.later).
DEFERRED = "wiz_deferred"

# The database server's clock in milliseconds since the epoch: leases are
# granted and judged by one clock, whatever the nodes' clocks say.
DB_NOW = "(extract(epoch from clock_timestamp()) * 1000)::bigint"
