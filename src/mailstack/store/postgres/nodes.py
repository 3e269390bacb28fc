"""The nodes that share the PostgreSQL store (``mailstack cluster status``):
each serving node's row in ``nodes`` (written at its start, its heartbeat
moving ``last_seen``) with the queue recipients it holds leased."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailstack.store.contract.queue import QUEUED
from mailstack.store.postgres.engine import PgEngine


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    host: str
    pid: int
    started: float
    last_seen: float
    leases: int  # queued recipients it holds leased (deliveries under way)


class NodesPart(PgEngine):
    async def cluster_nodes(self) -> list[NodeInfo]:
        """Every node that heartbeats (or did: a node killed stays listed,
        its ``last_seen`` ageing) and every lease holder, by name."""

        async def op(c: Any) -> list[NodeInfo]:
            rows = await c.fetch(
                "SELECT coalesce(n.name, l.lease_node), coalesce(n.host, ''),"
                " coalesce(n.pid, 0), coalesce(n.started, 0), coalesce(n.last_seen, 0),"
                " coalesce(l.leases, 0)"
                " FROM nodes n FULL JOIN (SELECT lease_node, count(*) AS leases"
                " FROM queue_recipients WHERE lease_node IS NOT NULL AND state = $1"
                " GROUP BY lease_node) l ON l.lease_node = n.name ORDER BY 1",
                QUEUED,
            )
            return [
                NodeInfo(r[0], r[1], int(r[2]), float(r[3]), float(r[4]), int(r[5]))
                for r in rows
            ]

        return await self._read(op)
