"""SMTP: the receiver for local domains (MX role, `server.py`), authenticated
submission (`submission.py`), the protocol state machine both run on
(`proto.py`, no I/O, with `replies.py` and `address.py`), what the two
servers' sessions share on the common session driver (`session.py`), and the
client the queue sends with: `client_proto.py` (replies parsed, commands
built; no I/O) and `client.py` (one connection carrying several messages).
Both servers hand accepted mail to `mailstack.delivery`; `config.py` holds the
`[smtp]` and `[submission]` tables.

RFC 5321 with RFC 1870 SIZE, 2920 PIPELINING, 6152 8BITMIME, 6531 SMTPUTF8,
3030 CHUNKING, 2034/3463 ENHANCEDSTATUSCODES, 3207 STARTTLS, 3461 DSN,
4954 AUTH, 6409 submission, 4468 BURL (submission; the URL is resolved by
`mailstack.imap.urls`), 8314 implicit TLS. The client uses PIPELINING,
CHUNKING, SIZE, 8BITMIME, SMTPUTF8 (never downgraded) and DSN when the server
offers them, and STARTTLS opportunistically (RFC 7435). See docs/rfc-status.md.
"""
