"""SMTP: the receiver for local domains (MX role, `server.py`), authenticated
submission (`submission.py`), and the protocol state machine both run on
(`proto.py`, no I/O).

RFC 5321 with RFC 1870 SIZE, 2920 PIPELINING, 6152 8BITMIME, 6531 SMTPUTF8,
3030 CHUNKING, 2034/3463 ENHANCEDSTATUSCODES, 3207 STARTTLS, 3461 DSN,
4954 AUTH, 6409 submission, 8314 implicit TLS. See docs/rfc-status.md.
"""
