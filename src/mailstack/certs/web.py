"""What the node's HTTP service serves for certificates: the answers to
pending ACME http-01 challenges (RFC 8555 §8.3), read from the files that
``certs/acme.py`` writes, whichever process ordered the certificate."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from mailstack.certs.acme import ChallengeFiles


def routes(data_dir: Path) -> list[web.RouteDef]:
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

    return [web.get("/.well-known/acme-challenge/{token}", challenge)]
