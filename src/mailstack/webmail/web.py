"""The webmail's routes on the node's HTTP service.

| path | what |
| --- | --- |
| ``/``, ``/mail`` | redirect to the app |
| ``/mail/`` and ``/mail/static/{name}`` | the app: one page, its modules and style (public) |
| ``POST /webmail/login`` | address and password (JSON) → session cookie, CSRF token |
| ``POST /webmail/logout`` | revokes the session's token, clears the cookie |
| ``GET /webmail/session`` | who is logged in, the CSRF token |
| ``GET``, ``POST /webmail/settings`` | the user's webmail preferences (``prefs.py``) |
| ``GET /webmail/contacts?q=`` | past correspondents matching ``q``, for autocomplete |
| ``POST /webmail/sanitize`` | an HTML body the composer wrote, cleaned as mail is |
| ``GET /webmail/message/{emailId}`` | what the app needs to show a body (blocked images) |
| ``GET /webmail/message/{emailId}/body`` | the body as a sanitised document for a sandboxed frame |
| ``GET /webmail/message/{emailId}/explain`` | "Explain this message" (``explain.py``) |
| ``GET /webmail/part`` | an inline (``cid:``) image, by a signed link (public) |
| ``/proxy/image`` | remote images, by a signed link (``imageproxy.py``, public) |

The app itself talks JMAP (``/jmap/...``) with the session cookie.
"""

from __future__ import annotations

import html
import json
from email.parser import BytesHeaderParser
from email.policy import compat32
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web

from mailstack.common.auth import Login, Outcome, new_token, token_digest
from mailstack.common.fetch import networks
from mailstack.common.netguard import is_loopback
from mailstack.common.webkeys import ACCOUNT
from mailstack.jmap import api, blobs, ids
from mailstack.jmap.problem import RequestError
from mailstack.jmap.web import read_body
from mailstack.webmail import prefs, session
from mailstack.webmail.contacts import MAX_QUERY, contacts
from mailstack.webmail.explain import explain
from mailstack.webmail.imageproxy import ImageProxy, load_key
from mailstack.webmail.imageproxy import routes as proxy_routes
from mailstack.webmail.links import PartLinks
from mailstack.webmail.sanitize import sanitize

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.store import Account

APP = "/mail/"
NO_STORE = {hdrs.CACHE_CONTROL: "no-store"}
# The app: its own scripts, styles and frames only; nothing inline.
APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# A message's frame: nothing runs, images only from the node.
FRAME_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STATIC = {
    "app.js": "text/javascript",
    "jmap.js": "text/javascript",
    "views.js": "text/javascript",
    "search.js": "text/javascript",
    "compose.js": "text/javascript",
    "app.css": "text/css",
}
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"


def image_proxy(node: Node) -> ImageProxy:
    config = node.config.webmail
    return ImageProxy(
        load_key(node.config.data_dir / "webmail" / "proxy.key"),
        node.resolver.addresses,
        networks(config.proxy_allow),
        max_size=config.proxy_max_size,
        timeout=config.proxy_timeout,
        lifetime=config.proxy_link_lifetime,
    )


def _asset(name: str) -> bytes:
    return resources.files("mailstack.webmail").joinpath("static", name).read_bytes()


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, headers=NO_STORE | SECURITY)


def _error(status: int, detail: str) -> web.Response:
    body = {"type": "about:blank", "status": status, "detail": detail}
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/problem+json",
        headers=NO_STORE,
    )


class Webmail:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.key = load_key(node.config.data_dir / session.KEY_FILE)
        self.proxy = image_proxy(node)
        self.parts = PartLinks(self.key, lifetime=node.config.webmail.proxy_link_lifetime)

    # --- the app --------------------------------------------------------

    async def to_app(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(APP)

    async def page(self, request: web.Request) -> web.StreamResponse:
        headers = {"Content-Security-Policy": APP_CSP, "X-Frame-Options": "DENY"}
        response = web.Response(
            body=_asset("index.html"),
            content_type="text/html",
            charset="utf-8",
            headers=headers | SECURITY | {hdrs.CACHE_CONTROL: "no-cache"},
        )
        response.enable_compression()  # the same for every visitor: no secret in it
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        kind = STATIC.get(name)
        if kind is None:
            return _error(404, "No such file.")
        response = web.Response(
            body=_asset(name),
            content_type=kind,
            charset="utf-8",
            headers=SECURITY | {hdrs.CACHE_CONTROL: "no-cache"},
        )
        # Public files, no secret in them: compressing them leaks nothing (BREACH).
        response.enable_compression()
        return response

    # --- the session ----------------------------------------------------

    def _may_take_credentials(self, request: web.Request) -> bool:
        """Over https, or plain HTTP from loopback when allowed (as http/service.py)."""
        return request.secure or (
            self.node.config.http.allow_plaintext_on_loopback and is_loopback(request.remote or "")
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        node = self.node
        client = request.remote or ""
        if not self._may_take_credentials(request):
            return _error(403, "Credentials are taken only over https.")
        # A form of another site cannot send JSON without a CORS preflight.
        if request.content_type != "application/json":
            return _error(415, "Send the address and password as JSON.")
        if not session.same_origin(request, node.config.http.public_url or None):
            return _error(403, "A login is taken only from this site's own pages.")
        try:
            body = json.loads(await request.read())
            user, password = body["username"], body["password"]
            if not isinstance(user, str) or not isinstance(password, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _error(400, "Give a username and a password.")
        if not user or len(user) > 320 or len(password) > 1024:
            return _error(400, "Give a username and a password.")
        # Refused at once when throttled, rather than held: a page waits for no one.
        login = await node.authenticator.login("http", user, password, client, hold=False)
        if login.outcome is not Outcome.OK or login.account is None:
            status, detail = {
                Outcome.THROTTLED: (429, "Too many failed logins: try again later."),
                Outcome.UNAVAILABLE: (503, "Logins cannot be checked now: try again later."),
            }.get(login.outcome, (401, "The address or the password is wrong."))
            return _error(status, detail)
        secret = new_token()
        store = node.store
        assert store is not None
        await store.token_add(login.account.id, session.TOKEN_NAME, token_digest(secret))
        response = _json(
            {"username": login.account.address, "csrf": session.csrf_token(self.key, secret)}
        )
        session.set_cookie(response, request, secret)
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        secret = session.cookie_token(request)
        store = self.node.store
        if secret is not None and store is not None:
            found = await store.token_find(token_digest(secret))
            if found is not None:
                await store.token_remove(found[0].id)
        response = _json({"loggedOut": True})
        session.clear_cookie(response, request)
        return response

    async def whoami(self, request: web.Request) -> web.StreamResponse:
        """Who the cookie logs in, and the session's CSRF token; public, so
        that a page without a session gets no challenge (the browser would
        answer a Basic one with a password dialog of its own)."""
        secret = session.cookie_token(request)
        if secret is None or not self._may_take_credentials(request):
            return _json({"username": None, "csrf": None})
        login = await self.node.authenticator.token_login("http", secret, request.remote or "")
        if login.outcome is Outcome.OK and await session.ended(self.node, login):
            login = Login(Outcome.FAILED)
        if login.outcome is Outcome.OK and login.account is not None:
            csrf = session.csrf_token(self.key, secret)
            return _json({"username": login.account.address, "csrf": csrf})
        if login.outcome is Outcome.FAILED:
            response = _json({"username": None, "csrf": None})
            session.clear_cookie(response, request)
            return response
        return _error(429 if login.outcome is Outcome.THROTTLED else 503, "Try again later.")

    # --- preferences ----------------------------------------------------

    async def _body(self, request: web.Request, limit: int) -> bytes:
        """The whole request body (``content.read(n)`` gives only what has
        arrived so far), at most ``limit`` octets, within the body timeout."""
        return await read_body(request, limit, self.node.config.limits.http_body_timeout)

    async def settings(self, request: web.Request) -> web.StreamResponse:
        user: Account = request[ACCOUNT]
        store = self.node.store
        assert store is not None
        if request.method == "GET":
            return _json(await prefs.load(store, user.id))
        try:
            body = await self._body(request, prefs.MAX_BODY + 1)
        except RequestError as error:
            return _error(error.status, error.detail)
        try:
            change = prefs.parse(body)
        except prefs.BadSettings as error:
            return _error(400, str(error))
        return _json(await prefs.change(store, user.id, change))

    async def contacts(self, request: web.Request) -> web.StreamResponse:
        user: Account = request[ACCOUNT]
        q = request.query.get("q", "").strip()
        if not q:
            return _json({"contacts": []})
        if len(q) > MAX_QUERY:
            return _error(400, f"Ask with at most {MAX_QUERY} characters.")
        return _json({"contacts": await contacts(self.node, user, q)})

    async def clean(self, request: web.Request) -> web.StreamResponse:
        """The composer's rich text, cleaned as any mail body is before it
        is shown (``sanitize.py``), so what is stored holds nothing that runs
        or fetches."""
        limit = self.node.config.limits.http_body
        try:
            body = await self._body(request, limit)
        except RequestError as error:
            return _error(413 if error.limit else error.status, error.detail)
        try:
            source = json.loads(body)["html"]
            if not isinstance(source, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _error(400, 'Send {"html": "..."}.')
        return _json({"html": sanitize(source).html})

    # --- messages -------------------------------------------------------

    async def _email(self, user: Account, email_id: str) -> dict[str, Any] | None:
        """The email's body parts and values, read with Email/get."""
        account = ids.encode(ids.ACCOUNT, user.id)
        args = {
            "accountId": account,
            "ids": [email_id],
            "properties": ["htmlBody", "textBody", "bodyValues", "attachments"],
            "bodyProperties": ["partId", "blobId", "type", "cid", "disposition", "name"],
            "fetchHTMLBodyValues": True,
            "maxBodyValueBytes": self.node.config.limits.http_body,
        }
        request = api.Request(frozenset({CORE, MAIL}), [("Email/get", args, "0")], None)
        response = await api.process(self.node, user, request, session_state="")
        name, result, _ = response["methodResponses"][0]
        if name != "Email/get" or not result["list"]:
            return None
        email: dict[str, Any] = result["list"][0]
        return email

    async def _document(self, user: Account, email_id: str, images: bool) -> tuple[str, int] | None:
        """The body as a document to show, and how many remote images it blocked."""
        email = await self._email(user, email_id)
        if email is None:
            return None
        values = email.get("bodyValues") or {}
        html_parts = [p for p in email.get("htmlBody") or [] if p.get("type") == "text/html"]
        if html_parts:
            cids = {
                (p.get("cid") or "").strip("<>"): p
                for p in email.get("attachments") or []
                if p.get("cid") and (p.get("type") or "").startswith("image/")
            }

            def cid_url(cid: str) -> str | None:
                part = cids.get(cid)
                if part is None:
                    return None
                return self.parts.link(user.id, part["blobId"], part["type"])

            source = "".join(values.get(p["partId"], {}).get("value", "") for p in html_parts)
            clean = sanitize(source, cid_url=cid_url, proxy_url=self.proxy.link if images else None)
            return clean.html, clean.blocked_images
        text = "\n".join(
            values.get(p["partId"], {}).get("value", "")
            for p in email.get("textBody") or []
            if p.get("type") == "text/plain"
        )
        return f'<pre style="white-space:pre-wrap;font:inherit">{html.escape(text)}</pre>', 0

    async def message(self, request: web.Request) -> web.StreamResponse:
        user: Account = request[ACCOUNT]
        document = await self._document(user, request.match_info["emailId"], False)
        if document is None:
            return _error(404, "No such email.")
        return _json({"blockedImages": document[1]})

    async def body(self, request: web.Request) -> web.StreamResponse:
        user: Account = request[ACCOUNT]
        images = request.query.get("images") == "1"
        document = await self._document(user, request.match_info["emailId"], images)
        if document is None:
            return _error(404, "No such email.")
        page = (
            '<!doctype html><html><head><meta charset="utf-8">'
            '<meta name="referrer" content="no-referrer"></head>'
            '<body style="font-family:system-ui,sans-serif;margin:8px;overflow-wrap:anywhere">'
            f"{document[0]}</body></html>"
        )
        headers = {"Content-Security-Policy": FRAME_CSP} | SECURITY | NO_STORE
        return web.Response(text=page, content_type="text/html", headers=headers)

    async def explain(self, request: web.Request) -> web.StreamResponse:
        user: Account = request[ACCOUNT]
        blob_id = "G" + request.match_info["emailId"].removeprefix("E")
        raw = None
        if ids.decode(ids.EMAIL, request.match_info["emailId"]) is not None:
            raw = await blobs.blob_bytes(self.node, user.id, blob_id)
        if raw is None:
            return _error(404, "No such email.")
        head = BytesHeaderParser(policy=compat32).parsebytes(raw)
        received = [str(v) for v in head.get_all("Received") or []]
        results = [str(v) for v in head.get_all("Authentication-Results") or []]
        found = explain(received, results, trusted={self.node.hostname.lower()})
        return _json(
            {
                "hops": [
                    {
                        "from": hop.from_host,
                        "ip": hop.from_ip,
                        "by": hop.by,
                        "protocol": hop.protocol,
                        "tls": hop.tls,
                        "when": hop.when.isoformat() if hop.when else None,
                        "delay": hop.delay,
                        "sentence": hop.sentence(),
                    }
                    for hop in found.hops
                ],
                "checks": [
                    {
                        "method": check.method,
                        "result": check.result,
                        "properties": check.properties,
                        "sentence": check.sentence(),
                    }
                    for check in found.checks
                ],
                "totalDelay": found.total_delay,
            }
        )

    async def part(self, request: web.Request) -> web.StreamResponse:
        headers = SECURITY | {"Content-Security-Policy": "default-src 'none'; sandbox"}
        link = self.parts.check(dict(request.query))
        if link is None:
            return web.Response(status=403, text="not a link made here\n", headers=headers)
        account, blob_id, kind = link
        data = await blobs.blob_bytes(self.node, account, blob_id)
        if data is None:
            return web.Response(status=404, text="no such part\n", headers=headers)
        headers[hdrs.CACHE_CONTROL] = "private, max-age=3600"
        return web.Response(body=data, content_type=kind, headers=headers)

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/", self.to_app, name="public.webmail-root"),
            web.get("/mail", self.to_app, name="public.webmail-redirect"),
            web.get(APP, self.page, name="public.webmail-app"),
            web.get("/mail/static/{name}", self.static, name="public.webmail-static"),
            web.post("/webmail/login", self.login, name="public.webmail-login"),
            web.post("/webmail/logout", self.logout),
            web.get("/webmail/session", self.whoami, name="public.webmail-session"),
            web.get("/webmail/settings", self.settings),
            web.post("/webmail/settings", self.settings),
            web.get("/webmail/contacts", self.contacts),
            web.post("/webmail/sanitize", self.clean),
            web.get("/webmail/message/{emailId}", self.message),
            web.get("/webmail/message/{emailId}/body", self.body),
            web.get("/webmail/message/{emailId}/explain", self.explain),
            web.get("/webmail/part", self.part, name="public.webmail-part"),
        ]


def routes(node: Node) -> list[web.AbstractRouteDef]:
    webmail = Webmail(node)
    return webmail.routes() + proxy_routes(webmail.proxy)
