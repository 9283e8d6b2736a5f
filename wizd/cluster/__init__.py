"""Several wizd nodes on one PostgreSQL database (docs/scale-out.md).

    node id        --node, else <host>:<socket>; the write connection holds a
                   lock on it (no two wizd run as one node) and tells it to
                   the statements (wiz.node): a claim marks its jobs with it
    membership     registers the node and renews its lease every third of
                   --lease; takes back the jobs of nodes whose lease lapsed;
                   keeps daemon.status's view of the cluster and its counts
    bus            LISTEN/NOTIFY between the nodes: a commit that made a job
                   claimable wakes every scheduler; messages stored anywhere
                   reach every node's subscribers in seq order (a notice,
                   then a read of the rows); other events are relayed

A node's jobs are under its lease: when it lapses (the node was killed, its
machine lost power or the network), the next renewal of any other node
returns them to the queue, the attempt given back; the node, if it was only
cut off, finds them gone when it comes back and drops what it was doing (its
outcome writes are refused: an active job moves only for the node holding
it). The unique (reply_to, author) constraint stays the last line against a
second reply.

On SQLite there is one wizd (the instance lock): none of this runs, and
daemon.status shows that one node.
"""
