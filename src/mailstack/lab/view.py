"""The lab's live view: a web page that draws the topology as the lectures
draw it and every exchange between the lab's hosts as a sequence diagram, as
it happens.

The events are the hosts' own trace (common/trace.py `TraceEvent`, the JSON
lines each `mailstack serve --trace-json` writes to its trace.jsonl) and the
scenarios' start and end notes (marks.jsonl, same type): this module only
reads them, turns each host's view of an exchange into an arrow between two
lab hosts, and streams them to the page (Server-Sent Events, the WHATWG HTML
standard's `text/event-stream`). It runs on the lab's own event loop
(aiohttp), never inside a host: the hosts do not know they are watched.

The page is static HTML, one JavaScript module and one style sheet, served
from the package with a strict Content-Security-Policy (no inline script or
style, nothing from elsewhere). It can start a scenario (`mailstack lab run
NAME`, a child process); the request must come from the page itself (its
Origin), and only to the view's own Host name, so no other web site and no
DNS-rebound name can start one.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import signal
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from mailstack.common.trace import CLIENT, NOTE, TraceEvent
from mailstack.lab.topology import PROBE, Topology

log = logging.getLogger(__name__)

# The view listens on 127.0.0.1 (no lab host has that address), at the HTTP
# port plus the lab's offset: 10080 unprivileged, 80 as root.
ADDRESS = "127.0.0.1"
HTTP_PORT = 80
# How often the hosts' trace files are read for new lines.
POLL_SECONDS = 0.1
# Events kept for a page that connects later; older ones are dropped.
EVENTS_KEPT = 20_000
# A trace line longer than this is skipped unread (a DNS message in dig's
# form is a few kilobytes at most).
LINE_MAX = 256 * 1024
# A page's event stream says something at least this often.
KEEPALIVE_SECONDS = 15.0
# A scenario started from the page ends within this (else it is killed).
SCENARIO_TIMEOUT = 180.0
# The lab's own trace events (host LAB): `lab up` done (protocol UP), the
# scenarios' starts and ends (protocol "scenario").
MARKS_FILE = "marks.jsonl"
LAB = "lab"
UP = "lab"
TRACE_FILE = "trace.jsonl"
STATIC = {
    "/": ("index.html", "text/html"),
    "/view.js": ("view.js", "text/javascript"),
    "/view.css": ("view.css", "text/css"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Roles in the order the lectures draw them, top to bottom.
LEVELS = ("root", "tld", "authoritative", "resolver", "mail", "client")


def view_url(offset: int) -> str:
    return f"http://{ADDRESS}:{HTTP_PORT + offset}/"


def links(world: Topology) -> list[dict[str, str]]:
    """The topology's lines: each zone's servers to those of the zones it
    delegates (RFC 1034 §4.2.1), each client to its local name server."""
    out = []
    for zone in world.zones():
        parent = world.parent(zone)
        if parent is None:
            continue
        for above in world.servers[parent]:
            for below in world.servers[zone]:
                if above.name != below.name:
                    out.append({"from": above.name, "to": below.name, "kind": "delegation"})
    for host in world.hosts:
        if host.resolver:
            out.append({"from": host.name, "to": host.resolver, "kind": "resolver"})
    return out


class Arrows:
    """Trace events turned into the page's arrows: who said it to whom.

    A server's trace names its peer by address: the lab host with that
    address, else the address itself (a user agent on 127.0.0.1). A session
    we opened (`smtp-out`) to a host that traces too is the same dialogue
    that host records as its server: drawn once, from the server's side."""

    def __init__(self, world: Topology) -> None:
        self.by_address = {host.address: host.name for host in world.hosts}
        self.tracing = {host.name for host in world.hosts if host.runs}
        # The time `lab up` saw every host answer: nothing before is drawn.
        self.up: float | None = None

    def arrow(self, event: TraceEvent) -> dict[str, Any] | None:
        if event.host == LAB:
            # The lab's own marks: up, a scenario's start and end.
            if event.protocol == UP:
                self.up = event.time
            return self._make(event, "", "")
        address = event.peer.rpartition(":")[0] if ":" in event.peer else event.peer
        if self.up is None or event.time < self.up or event.direction == NOTE:
            return None
        if address == PROBE:
            return None  # `lab up` seeing that the host answers
        peer = self.by_address.get(address, address)
        outbound = event.protocol.endswith("-out")
        if outbound and peer in self.tracing:
            return None
        if (event.direction == CLIENT) != outbound:
            return self._make(event, peer, event.host)
        return self._make(event, event.host, peer)

    def _make(self, event: TraceEvent, source: str, target: str) -> dict[str, Any]:
        return {
            "time": event.time,
            "from": source,
            "to": target,
            "protocol": event.protocol,
            "session": event.session if event.host == LAB else f"{event.host} {event.session}",
            "direction": event.direction,
            "summary": event.summary,
            "detail": event.detail,
        }


class Tail:
    """New whole lines of a file that others append to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(4 * 1024 * 1024)
        except OSError:
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        if len(self.partial) > LINE_MAX:
            self.partial = b""
        return [line.decode("utf-8", "replace") for line in lines if 0 < len(line) <= LINE_MAX]


def traced(world: Topology, root: Path, since: float) -> list[dict[str, Any]]:
    """The arrows between the lab's hosts traced since ``since`` (seconds
    since the epoch), in time order: what the view draws, for a scenario's
    transcript."""
    arrows = Arrows(world)
    arrows.up = since
    out = []
    for host in world.hosts:
        if not host.runs:
            continue
        tail = Tail(root / "hosts" / host.name / TRACE_FILE)
        while lines := tail.read():
            for line in lines:
                try:
                    arrow = arrows.arrow(TraceEvent.from_json(line))
                except ValueError:
                    continue
                if arrow is not None:
                    out.append(arrow)
    return sorted(out, key=lambda arrow: arrow["time"])


class View:
    """The live view of the lab under ``root``."""

    def __init__(
        self,
        world: Topology,
        root: Path,
        offset: int,
        *,
        report: dict[str, Any],
        scenarios: list[str],
        command: list[str],
    ) -> None:
        """``report`` is `lab status --json`; ``command`` runs `mailstack`
        (a scenario is ``command + ["lab", "run", NAME, ...]``)."""
        self.world = world
        self.root = root
        self.offset = offset
        self.report = report | {
            "links": links(world),
            "levels": list(LEVELS),
            "scenarios": scenarios,
        }
        self.command = command
        self.port = HTTP_PORT + offset
        self.arrows = Arrows(world)
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENTS_KEPT)
        # Set (and replaced) whenever events arrive; the pages' streams wait on it.
        self.changed = asyncio.Event()
        self.sent = 0
        self.tails = [Tail(root / MARKS_FILE)] + [
            Tail(root / "hosts" / host.name / TRACE_FILE) for host in world.hosts if host.runs
        ]
        self.scenario_lock = asyncio.Lock()

    # -- the events ---------------------------------------------------------------

    def poll(self) -> None:
        """Read what every host traced since the last poll and pass it on."""
        fresh: list[dict[str, Any]] = []
        for tail in self.tails:
            for line in tail.read():
                try:
                    event = TraceEvent.from_json(line)
                except ValueError:
                    continue
                arrow = self.arrows.arrow(event)
                if arrow is not None:
                    fresh.append(arrow)
        if not fresh:
            return
        fresh.sort(key=lambda arrow: arrow["time"])
        for arrow in fresh:
            self.sent += 1
            self.events.append(arrow | {"id": self.sent})
        # Wake every page's stream; each sends what it has not yet sent.
        self.changed.set()
        self.changed = asyncio.Event()

    async def follow(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(POLL_SECONDS)

    # -- the web service ------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        for path in STATIC:
            app.router.add_get(path, self._static)
        app.router.add_get("/api/lab", self._lab)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/run/{name}", self._run)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # Only the view's own names (no DNS rebinding), and for a POST only
        # the page itself (no other site's form or script).
        own = {f"{ADDRESS}:{self.port}", f"localhost:{self.port}"}
        if request.host not in own:
            raise web.HTTPMisdirectedRequest(text="not this view's name\n")
        if request.method != "GET" and request.headers.get("Origin") not in {
            f"http://{name}" for name in own
        }:
            raise web.HTTPForbidden(text="only the view's own page may do this\n")
        response: web.StreamResponse = await handler(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def _static(self, request: web.Request) -> web.Response:
        name, content_type = STATIC[request.path]
        body = resources.files("mailstack.lab").joinpath("view", name).read_bytes()
        return web.Response(body=body, content_type=content_type, charset="utf-8")

    async def _lab(self, request: web.Request) -> web.Response:
        return web.json_response(self.report)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Every arrow kept, then each new one, as one `data:` event each; a
        comment line keeps the connection alive through quiet times. A page
        that falls behind by more than the events kept skips the oldest: the
        memory a slow page costs is bounded."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.headers.update(SECURITY_HEADERS)
        await response.prepare(request)
        last = 0
        try:
            while True:
                changed = self.changed
                fresh = [arrow for arrow in self.events if arrow["id"] > last]
                if fresh:
                    last = fresh[-1]["id"]
                    await response.write(
                        b"".join(
                            b"data: " + json.dumps(a, ensure_ascii=False).encode() + b"\n\n"
                            for a in fresh
                        )
                    )
                    continue
                try:
                    await asyncio.wait_for(changed.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": idle\n\n")
        except ConnectionError:
            pass
        return response

    async def _run(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.report["scenarios"]:
            raise web.HTTPNotFound(text=f"no scenario {name}\n")
        if self.scenario_lock.locked():
            raise web.HTTPConflict(text="a scenario is running; wait for it to end\n")
        async with self.scenario_lock:
            status, transcript = await self._play(name)
        return web.json_response({"scenario": name, "status": status, "transcript": transcript})

    async def _play(self, name: str) -> tuple[int, str]:
        """`mailstack lab run NAME` on this lab, as a child process."""
        child = await asyncio.create_subprocess_exec(
            *self.command,
            "lab",
            "run",
            name,
            "--lab-dir",
            str(self.root),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(child.communicate(), SCENARIO_TIMEOUT)
        except TimeoutError:
            child.kill()
            await child.wait()
            return 1, f"scenario {name}: no end after {SCENARIO_TIMEOUT:.0f} s; stopped\n"
        return int(child.returncode or 0), output.decode("utf-8", "replace")

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, ADDRESS, self.port)
        await site.start()
        follow = asyncio.ensure_future(self.follow())
        try:
            await stop.wait()
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
            await runner.cleanup()


def run(view: View) -> None:
    """Serve ``view`` on this process's own loop until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await view.serve(stop)

    asyncio.run(main())
