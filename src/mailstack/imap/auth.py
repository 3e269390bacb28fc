"""Any-state and not-authenticated commands: CAPABILITY, NOOP, LOGOUT,
STARTTLS, LOGIN, AUTHENTICATE (RFC 3501 §6.1, §6.2; SASL-IR RFC 4959), ID
(RFC 2971), ENABLE (RFC 5161: CONDSTORE, QRESYNC, IMAP4rev2, UTF8=ACCEPT)
and COMPRESS (RFC 4978; the connection does the deflating, server.py).
"""

from __future__ import annotations

import ssl

from mailstack.common import sasl
from mailstack.common.auth import Outcome
from mailstack.errors import ImapError
from mailstack.imap.proto.commands import Authenticate, Command, Compress, Enable, Id, Login
from mailstack.imap.proto.response import Atom, tagged, untagged
from mailstack.imap.proto.states import State
from mailstack.imap.session import Done, Session, handler

# RFC 2971 §3.3: at most 30 field-value pairs, fields at most 30 octets.
_ID_FIELDS = 30


@handler("CAPABILITY")
async def capability(s: Session, cmd: Command) -> Done | None:
    s.send(b"* CAPABILITY " + " ".join(s.capabilities()).encode() + b"\r\n")
    return None


@handler("NOOP")
async def noop(s: Session, cmd: Command) -> Done | None:
    # RFC 3501 §6.1.2: NOOP is how a client polls for updates; the session
    # polls after every command, so there is nothing else to do.
    return None


@handler("LOGOUT")
async def logout(s: Session, cmd: Command) -> Done | None:
    # RFC 3501 §6.1.3: BYE before the tagged OK.
    s.send(b"* BYE Logging out\r\n")
    await s.close()
    s.closing = True
    return None


@handler("STARTTLS")
async def starttls(s: Session, cmd: Command) -> Done | None:
    if not s.ctx.starttls_available or s.channel.tls_active:
        raise ImapError("STARTTLS not available", bad=True)
    # RFC 3501 §6.2.1: the negotiation starts right after the tagged OK, and
    # the client discards cached capabilities.
    s.send(b"%s OK Begin TLS negotiation now\r\n" % cmd.tag.encode())
    await s.channel.flush()
    try:
        await s.channel.start_tls()
    except (ssl.SSLError, ConnectionError, OSError):
        # A failed handshake leaves nothing to talk over.
        s.closing = True
    return Done("", answered=True)


async def _login_checks(s: Session) -> None:
    if not s.plaintext_ok():
        # RFC 3501 §6.2.3: LOGINDISABLED; RFC 5530 PRIVACYREQUIRED.
        raise ImapError("Use TLS first", code="PRIVACYREQUIRED")
    if s.login_failures >= 3 * s.limits.login_failures:
        # A session that keeps guessing is closed; the node's authenticator
        # throttles its address across sessions.
        s.send(b"* BYE Too many failed logins\r\n")
        s.closing = True
        raise ImapError("Too many failed logins", code="AUTHENTICATIONFAILED")


async def _finish_login(s: Session, address: str, password: str) -> Done:
    login = await s.ctx.authenticator.login("imap", address, password, s.peer)
    if login.outcome is Outcome.UNAVAILABLE:
        raise ImapError("The store refused the operation", code="CANNOT")
    if login.account is None:
        s.login_failures += 1
        if login.outcome is Outcome.THROTTLED:
            # RFC 5530 UNAVAILABLE: temporary; the password was not checked.
            raise ImapError("Too many failed logins, try again later", code="UNAVAILABLE")
        raise ImapError("Invalid credentials", code="AUTHENTICATIONFAILED")
    account = login.account
    count = s.ctx.user_sessions.get(account.id, 0)
    if count >= s.limits.imap_sessions_per_user:
        raise ImapError("Too many sessions for this user", code="LIMIT")
    s.ctx.user_sessions[account.id] = count + 1
    s.account = account
    s.release_login = s.ctx.authenticator.logins.hold(account.address)
    s.state = State.AUTHENTICATED
    if s.on_login is not None:
        s.on_login()
    return Done("Logged in", s.capability_code())


@handler("LOGIN")
async def login(s: Session, cmd: Command) -> Done | None:
    assert isinstance(cmd.args, Login)
    await _login_checks(s)
    return await _finish_login(s, cmd.args.username, cmd.args.password)


@handler("AUTHENTICATE")
async def authenticate(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Authenticate)
    mech = sasl.new_mechanism(args.mechanism, ("PLAIN",))
    if mech is None:
        raise ImapError("Unsupported mechanism", code="CANNOT")
    await _login_checks(s)
    try:
        initial = (
            None if args.initial_response is None else (sasl.decode_response(args.initial_response))
        )
        step = mech.initial(initial)
        while isinstance(step, sasl.Challenge):
            # RFC 3501 §6.2.2: a continuation with the base64 challenge.
            s.send(b"+ " + sasl.encode_challenge(step.data) + b"\r\n")
            await s.channel.flush()
            line = await s.channel.read_line()
            if line is None:
                s.closing = True
                raise ImapError("Connection closed", bad=True)
            if line.strip() == b"*":
                raise ImapError("Authentication cancelled", bad=True)
            step = mech.step(sasl.decode_response(line))
    except sasl.SaslError:
        s.login_failures += 1
        raise ImapError("Malformed SASL message", bad=True) from None
    if not step.acts_as_self():
        raise ImapError("Proxy authorization is not supported", code="AUTHORIZATIONFAILED")
    return await _finish_login(s, step.authcid, step.password)


@handler("COMPRESS")
async def compress(s: Session, cmd: Command) -> Done | None:
    assert isinstance(cmd.args, Compress)
    if cmd.args.mechanism != "DEFLATE":
        raise ImapError("Unknown compression mechanism", bad=True)
    if s.compressed:
        # RFC 4978 §3: compression cannot be turned on twice.
        raise ImapError("DEFLATE is already active", code="COMPRESSIONACTIVE")
    # RFC 4978 §3: compressed data starts right after this response's CRLF.
    s.send(tagged(cmd.tag, "OK", "DEFLATE active"))
    await s.channel.flush()
    s.channel.start_compression()
    s.compressed = True
    return Done("", answered=True)


@handler("ID")
async def id_(s: Session, cmd: Command) -> Done | None:
    assert isinstance(cmd.args, Id)
    if cmd.args.params is not None and len(cmd.args.params) > _ID_FIELDS:
        raise ImapError("Too many ID fields", bad=True)
    name = s.ctx.config.implementation
    params = None if not name else ["name", name]
    s.send(untagged(Atom("ID"), params))
    return None


# RFC 5161 §3.1: only extensions this server can enable.
_ENABLEABLE = {"CONDSTORE", "QRESYNC", "IMAP4REV2", "UTF8=ACCEPT"}
_SPELLING = {"IMAP4REV2": "IMAP4rev2"}


@handler("ENABLE")
async def enable(s: Session, cmd: Command) -> Done | None:
    assert isinstance(cmd.args, Enable)
    newly = []
    for cap in cmd.args.capabilities:
        if cap in _ENABLEABLE and cap not in s.enabled:
            s.enabled.add(cap)
            newly.append(cap)
            if cap in ("CONDSTORE", "QRESYNC"):
                # RFC 7162 §3.2.3: enabling QRESYNC implies CONDSTORE.
                s.enable_condstore()
            if cap == "QRESYNC":
                s.qresync = True
                if "CONDSTORE" not in s.enabled:
                    s.enabled.add("CONDSTORE")
            if cap == "IMAP4REV2":
                # RFC 9051 Appendix A: IMAP4rev2 from here on, UTF-8 names included.
                s.rev2 = True
                s.utf8 = True
            if cap == "UTF8=ACCEPT":
                s.utf8 = True  # RFC 6855 §3
    names = [_SPELLING.get(c, c) for c in newly]
    s.send(b"* ENABLED" + b"".join(b" " + c.encode() for c in names) + b"\r\n")
    return None
