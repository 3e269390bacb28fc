"""What the node's HTTP service serves for certificates: the answers to
pending ACME http-01 challenges (RFC 8555 §8.3), read from the files that
``certs/acme.py`` writes, whichever process ordered the certificate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from mailstack.certs.acme import ChallengeFiles
from mailstack.certs.mtasts import WELL_KNOWN, read_policy

if TYPE_CHECKING:
    from mailstack.app import Node


def routes(node: Node) -> list[web.AbstractRouteDef]:
    """The node's HTTP service's certificate routes (both public)."""
    data_dir = node.config.data_dir
    return acme_routes(data_dir) + mta_sts_routes(data_dir)


def acme_routes(data_dir: Path) -> list[web.AbstractRouteDef]:
    files = ChallengeFiles(data_dir / "tls" / "acme")

    async def challenge(request: web.Request) -> web.Response:
        answer = files.http_get(request.match_info["token"])
        if answer is None:
            raise web.HTTPNotFound(text="no such challenge\n")
        return web.Response(
            text=answer,
            content_type="application/octet-stream",
            headers={"Cache-Control": "no-store"},
        )

    return [web.get("/.well-known/acme-challenge/{token}", challenge, name="public.acme")]


def mta_sts_routes(data_dir: Path) -> list[web.AbstractRouteDef]:
    """RFC 8461 §3.3: the policy of the domain the request's host names
    (``mta-sts.DOMAIN``), as text/plain; 404 for any other host."""

    async def policy(request: web.Request) -> web.Response:
        text = read_policy(data_dir, request.host)
        if text is None:
            raise web.HTTPNotFound(text="no MTA-STS policy for this host\n")
        return web.Response(
            text=text,
            content_type="text/plain",
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    return [web.get(WELL_KNOWN, policy, name="public.mta-sts")]
