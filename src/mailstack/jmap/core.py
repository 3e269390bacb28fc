"""JMAP core methods (RFC 8620): ``Core/echo`` (§4)."""

from __future__ import annotations

from mailstack.jmap.method import Args, Call, Method

CORE = "urn:ietf:params:jmap:core"


async def echo(call: Call, args: Args) -> Args:
    """RFC 8620 §4: the arguments, unchanged."""
    return args


METHODS: dict[str, Method] = {
    "Core/echo": Method(CORE, echo),
}
