"""URLAUTH (RFC 4467): GENURLAUTH, RESETKEY and URLFETCH, with RFC 5524's
extended URLFETCH (URLAUTH=BINARY).

GENURLAUTH authorizes URLs of the user's own messages (the URL's user is
the one logged in, its host this server's) with the INTERNAL mechanism;
RESETKEY forgets mailbox access keys, and with them every URL made with
them; URLFETCH gives the octets of each URL that verifies for the user,
NIL for any other (§6.3: the reason is not said); a URL in parentheses
with parameters gets RFC 5524's BODYPARTSTRUCTURE, BODY and BINARY items
instead, still NIL alone when it does not verify. The keys, the verifier
and what a URL names are urls.py's, shared with CATENATE and BURL.
"""

from __future__ import annotations

from mailstack.errors import ImapError
from mailstack.imap import urls
from mailstack.imap.proto import imapurl
from mailstack.imap.proto.commands import Command, GenUrlAuth, ResetKey, UrlFetch, UrlFetchArg
from mailstack.imap.proto.response import Atom, Literal8, Raw, untagged
from mailstack.imap.session import Done, Session, handler


async def _authorized(s: Session, rump: str, mechanism: str) -> str:
    """The full URL of a rump (RFC 4467 §6.1), or NO [BADURL rump]."""
    assert s.account is not None
    if mechanism not in urls.MECHANISMS:
        raise ImapError("Unknown URLAUTH mechanism", code="BADURL " + rump)
    try:
        url = imapurl.parse(rump)
    except imapurl.BadUrl:
        url = None
    if (
        url is None
        or url.rump != rump  # not a rump: no ";URLAUTH=access", or a verifier too
        or await urls.owner_address(s.store, s.ctx.hostname, url) != s.account.address.lower()
    ):
        raise ImapError("Not a URL rump of this user on this server", code="BADURL " + rump)
    assert url.mailbox is not None
    mailbox = await s.store.mailbox_get(s.account.id, url.mailbox)
    if mailbox is None or url.uidvalidity not in (None, mailbox.uidvalidity):
        raise ImapError("No such mailbox", code="BADURL " + rump)
    key = await urls.mailbox_key(s.store, mailbox, create=True)
    assert key is not None
    # RFC 4467 §2: url-rump ":" mechanism ":" verifier.
    return f"{rump}:{mechanism.lower()}:{urls.authorize(key, rump)}"


@handler("GENURLAUTH")
async def genurlauth(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, GenUrlAuth)
    made = [await _authorized(s, rump, mechanism) for rump, mechanism in args.pairs]
    s.send(untagged(Atom("GENURLAUTH"), *made))
    return None


@handler("RESETKEY")
async def resetkey(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, ResetKey)
    assert s.account is not None
    if args.mailbox is None:
        await urls.reset_keys(s.store, s.account.id)
        return Done("All keys reset")
    unknown = [m for m in args.mechanisms if m not in urls.MECHANISMS]
    if unknown:
        raise ImapError("Unknown URLAUTH mechanism")
    mailbox = await s.store.mailbox_get(s.account.id, args.mailbox)
    if mailbox is None:
        raise ImapError("No such mailbox", code="NONEXISTENT")
    await urls.reset_keys(s.store, s.account.id, mailbox)
    return Done("Keys reset", "URLMECH INTERNAL")


@handler("URLFETCH")
async def urlfetch(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, UrlFetch)
    assert s.account is not None
    requester = urls.Requester(s.account.address)
    for arg in args.args:
        if arg.params:
            s.send(untagged(Atom("URLFETCH"), arg.url, *await _metadata(s, arg, requester)))
        else:
            # RFC 5524 §3: no parameters, or no parentheses, is RFC 4467's
            # URLFETCH. RFC 4467 §6.3: one URLFETCH response per URL, its
            # data or NIL.
            found = await urls.resolve(s.store, s.ctx.parsed, s.ctx.hostname, arg.url, requester)
            s.send(untagged(Atom("URLFETCH"), arg.url, found if isinstance(found, bytes) else None))
        # One message's worth in memory at a time, whatever the URL count.
        await s.channel.flush()
    return None


async def _metadata(s: Session, arg: UrlFetchArg, requester: urls.Requester) -> list[object]:
    """RFC 5524 §3.2: the URL's metadata items, BODYPARTSTRUCTURE first,
    then BODY or BINARY (as its §4 examples and Dovecot order them); NIL
    alone for a URL that does not verify (§5 urldata-error)."""
    assert arg.params is not None
    found = await urls.resolve_named(s.store, s.ctx.parsed, s.ctx.hostname, arg.url, requester)
    if isinstance(found, urls.Refusal):
        return [None]
    items: list[object] = []
    if "BODYPARTSTRUCTURE" in arg.params:
        structure = found.structure(binary="BINARY" in arg.params)
        items.append((Atom("BODYPARTSTRUCTURE"), Raw(structure)))
    if "BODY" in arg.params:
        items.append((Atom("BODY"), found.octets))
    if "BINARY" in arg.params:
        data = found.binary()
        # §5 url-meta-binary: "If content contains a NUL octet, literal8
        # MUST be used. Otherwise, content SHOULD use nstring."
        value = Literal8(data) if data is not None and b"\x00" in data else data
        items.append((Atom("BINARY"), value))
    return items
