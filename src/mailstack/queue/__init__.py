"""The outbound mail queue: durable entries, MX delivery, retries and bounces.

Implements RFC 5321 §4.5.4 (retry strategy) and §5 (MX lookup, in preference
order, equal preferences shuffled, the implicit MX), RFC 7505 (null MX),
RFC 3461 (DSN parameters passed on: NOTIFY, ORCPT, RET, ENVID), RFC 3464 (the
delivery status notifications we send) and RFC 3834 (Auto-Submitted).

Modules: `config` (the `[queue]` and `[submission]` tables), `routing` (the
MX plan, given a resolver), `policy` (what an attempt's outcome does to a
recipient: retry schedule, give-up, which DSN; given a clock), `dsn` (RFC 3464
reports), `runner` (the scheduler of a node) and `cli` (`mailstack queue
...`). The queue sends over the SMTP client (`mailstack.smtp.client`) and
delivers to local domains through `mailstack.delivery`; the durable part
lives in the store (`mailstack.store.contract.queue`, `mailstack.store.sqlite.queue`).
"""
