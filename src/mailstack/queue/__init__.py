"""The outbound mail queue: durable entries, MX delivery, retries and bounces.

Implements RFC 5321 §4.5.4 (retry strategy) and §5 (MX lookup, in preference
order, equal preferences shuffled, the implicit MX), RFC 7505 (null MX),
RFC 3461 (DSN parameters passed on: NOTIFY, ORCPT, RET, ENVID), RFC 3464 (the
delivery status notifications we send), RFC 3834 (Auto-Submitted), RFC 6152
(8BITMIME) and RFC 6531 (SMTPUTF8) on the client side, and opportunistic
STARTTLS (RFC 3207, RFC 7435).

Modules: `config` (the `[queue]` and `[submission]` tables), `routing` (the
MX plan, given a resolver), `policy` (what an attempt's outcome does to a
recipient: retry schedule, give-up, which DSN; given a clock), `dsn` (RFC 3464
reports), `client` (one SMTP connection carrying several messages), `runner`
(the scheduler of a node) and `cli` (`mailstack queue ...`). The durable part
lives in the store (`mailstack.store.contract.queue`, `mailstack.store.sqlite.queue`).
"""
