"""What the node's HTTP service keeps on an aiohttp request for the routes
of every package (``mailstack.http`` sets them; route providers such as
``mailstack.jmap.web`` read them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from mailstack.common.trace import SessionTrace
    from mailstack.store import Account

# The logged-in account of a request to a route that needs a login.
ACCOUNT: web.RequestKey[Account] = web.RequestKey("account")
# The request's trace, when the node traces.
TRACE: web.RequestKey[SessionTrace] = web.RequestKey("trace")
