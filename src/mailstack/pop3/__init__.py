"""POP3: download-and-delete and download-and-keep of a user's INBOX.

Implements RFC 1939 (POP3), RFC 2449 (CAPA and response codes), RFC 3206
([SYS/*] and [AUTH]), RFC 2595 (STLS), RFC 8314 (implicit TLS on pop3s) and
RFC 5034 (AUTH, with the SASL mechanisms of `mailstack.common.sasl`).

- `proto`: the session state machine, without I/O (one state table).
- `server`: `Pop3Service`, the socket loop over the node's store.
- `maildrops`: the node's maildrop locks (RFC 1939 §4).
- `config`: the `[pop3]` section.

docs/rfc-status.md says what is supported and what is not (APOP is not).
"""
