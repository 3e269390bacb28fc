"""CAPABILITY, NOOP, LOGOUT, LOGIN, AUTHENTICATE, STARTTLS, ID, ENABLE; the state table."""

import base64

from transcript import PASSWORD, USER, Client, setup_account

from mailstack.limits import Limits


async def test_greeting_and_capability(store):
    c = Client(store)
    greeting = c.session.greeting()
    assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN SASL-IR")
    await c.transcript(
        """
        C: a1 CAPABILITY
        S: * CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN SASL-IR LITERAL+ ID ENABLE IDLE ...
        S: a1 OK CAPABILITY completed
        C: a2 NOOP
        S: a2 OK NOOP completed
        C: a3 SELECT INBOX
        S: a3 BAD SELECT not allowed now
        C: a4 FROB
        S: a4 BAD Unknown command
        C: a5 LOGOUT
        S: * BYE Logging out
        S: a5 OK LOGOUT completed
        """
    )
    assert c.session.closing


async def test_login_success_and_failure(store):
    await setup_account(store)
    c = Client(store)
    await c.transcript(
        f"""
        C: a1 LOGIN {USER} wrong
        S: a1 NO [AUTHENTICATIONFAILED] Invalid credentials
        C: a2 LOGIN "{USER}" {{6}}\\r\\n{PASSWORD}
        S: a2 OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ...
        C: a3 LOGIN {USER} {PASSWORD}
        S: a3 BAD LOGIN not allowed now
        """
    )


async def test_authenticate_plain_with_and_without_initial_response(store):
    await setup_account(store)
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    c = Client(store)
    await c.transcript(
        f"""
        C: a1 AUTHENTICATE PLAIN {token}
        S: a1 OK [CAPABILITY ...
        """
    )
    c = Client(store)
    c.channel.lines.put_nowait(token.encode() + b"\r\n")
    await c.transcript(
        """
        C: a1 AUTHENTICATE PLAIN
        S: +
        S: a1 OK [CAPABILITY ...
        """
    )
    c = Client(store)
    c.channel.lines.put_nowait(b"*\r\n")
    await c.transcript(
        """
        C: a1 AUTHENTICATE PLAIN
        S: +
        S: a1 BAD Authentication cancelled
        C: a2 AUTHENTICATE CRAM-MD5
        S: a2 NO [CANNOT] Unsupported mechanism
        """
    )


async def test_plaintext_refused_off_loopback_without_tls(store):
    await setup_account(store)
    c = Client(store, peer="192.0.2.7")
    assert b"LOGINDISABLED" in c.session.greeting()
    await c.transcript(
        f"""
        C: a1 LOGIN {USER} {PASSWORD}
        S: a1 NO [PRIVACYREQUIRED] Use TLS first
        """
    )
    c.channel.tls_active = True
    await c.transcript(
        f"""
        C: a2 LOGIN {USER} {PASSWORD}
        S: a2 OK ...
        """
    )


async def test_sessions_per_user_limit(store):
    await setup_account(store)
    limits = Limits(imap_sessions_per_user=1)
    first = Client(store, limits)
    second = Client(store, limits)
    second.ctx = first.ctx
    second.session.ctx = first.ctx
    await first.login()
    await second.transcript(
        f"""
        C: a1 LOGIN {USER} {PASSWORD}
        S: a1 NO [LIMIT] Too many sessions for this user
        """
    )
    await first.session.close()
    await second.login()


async def test_failed_logins_throttled_then_disconnected(store):
    await setup_account(store)
    c = Client(store, Limits(login_failures=1, login_failure_delay=0.0))
    for n in range(3):
        got = await c.send(f"a{n} LOGIN {USER} nope")
        assert got[-1] == f"a{n} NO [AUTHENTICATIONFAILED] Invalid credentials"
    got = await c.send(f"a9 LOGIN {USER} {PASSWORD}")
    assert got[0].startswith("* BYE") and c.session.closing


async def test_id_and_enable(store):
    await setup_account(store)
    c = Client(store)
    await c.transcript(
        """
        C: a1 ID ("name" "test client" "version" NIL)
        S: * ID ("name" "mailstack")
        S: a1 OK ID completed
        C: a2 ENABLE CONDSTORE
        S: a2 BAD ENABLE not allowed now
        """
    )
    await c.login()
    await c.transcript(
        """
        C: a3 ENABLE QRESYNC X-UNKNOWN
        S: * ENABLED QRESYNC
        S: a3 OK ENABLE completed
        C: a4 ENABLE CONDSTORE
        S: * ENABLED
        S: a4 OK ENABLE completed
        """
    )
    assert c.session.qresync and c.session.condstore


async def test_starttls_only_when_offered(store):
    c = Client(store)
    await c.transcript(
        """
        C: a1 STARTTLS
        S: a1 BAD STARTTLS not available
        """
    )
    c.ctx.starttls_available = True
    assert b"STARTTLS" in c.session.greeting()
    await c.transcript(
        """
        C: a2 STARTTLS
        S: a2 OK Begin TLS negotiation now
        """
    )
    assert c.channel.tls_active


async def test_cached_login_notices_password_change_and_removal(store):
    from mailstack.common.auth import Authenticator

    await setup_account(store)
    authenticator = Authenticator(store, Limits(), cache_seconds=60)

    def client():
        c = Client(store)
        c.ctx.authenticator = authenticator
        return c

    await client().login()
    await client().login()  # from the cache
    await store.set_password(USER, "changed")
    got = await client().send(f"a1 LOGIN {USER} {PASSWORD}")
    assert got == ["a1 NO [AUTHENTICATIONFAILED] Invalid credentials"]
    got = await client().send(f"a2 LOGIN {USER} changed")
    assert got[-1].startswith("a2 OK")
    await store.account_remove(USER)
    got = await client().send(f"a3 LOGIN {USER} changed")
    assert got == ["a3 NO [AUTHENTICATIONFAILED] Invalid credentials"]


async def test_failures_from_one_address_throttle_new_sessions(store, monkeypatch):
    import asyncio as _asyncio

    await setup_account(store)
    limits = Limits(login_failures=2, login_failure_delay=7.0)
    first = Client(store, limits, peer="192.0.2.9")
    first.channel.tls_active = True
    for n in range(2):
        await first.send(f"a{n} LOGIN {USER} nope")
    delays = []

    async def fake_sleep(seconds):
        delays.append(seconds)

    monkeypatch.setattr(_asyncio, "sleep", fake_sleep)
    again = Client(store, limits, peer="192.0.2.9")
    again.ctx = first.ctx
    again.session.ctx = first.ctx
    again.channel.tls_active = True
    got = await again.session.run(f"b1 LOGIN {USER} {PASSWORD}\r\n".encode())
    assert delays == [7.0]  # a fresh connection from the same address still waits
    other = Client(store, limits, peer="192.0.2.10")
    other.ctx = first.ctx
    other.session.ctx = first.ctx
    other.channel.tls_active = True
    delays.clear()
    await other.session.run(f"c1 LOGIN {USER} {PASSWORD}\r\n".encode())
    assert delays == [] and got is None


async def test_compress_deflate(store):
    await setup_account(store, 0)
    c = Client(store)
    await c.transcript(
        """
        C: z1 COMPRESS DEFLATE
        S: z1 BAD COMPRESS not allowed now
        """
    )
    await c.login()
    caps = (await c.send("z2 CAPABILITY"))[0].split()
    assert "COMPRESS=DEFLATE" in caps
    await c.transcript(
        """
        C: z3 COMPRESS LZMA
        S: z3 BAD Unknown compression mechanism
        C: z4 COMPRESS DEFLATE
        S: z4 OK DEFLATE active
        C: z5 COMPRESS DEFLATE
        S: z5 NO [COMPRESSIONACTIVE] DEFLATE is already active
        """
    )
    assert c.channel.compressing
    caps = (await c.send("z6 CAPABILITY"))[0].split()
    assert "COMPRESS=DEFLATE" not in caps
