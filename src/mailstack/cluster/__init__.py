"""Several nodes on one PostgreSQL store (docs/scale-out.md).

* ``migrate``: ``mailstack migrate --from DATA_DIR --to postgresql://...``,
  a single node's SQLite store moved, row for row, into an empty PostgreSQL
  database, with counts and checksums of both sides;
* ``cli``: the commands ``migrate`` and ``cluster status`` (the nodes that
  share the store, when each was last seen, the queue leases each holds).

The shared store itself (leases, heartbeats, LISTEN/NOTIFY) is the
PostgreSQL backend's, in ``mailstack.store.postgres``.
"""
