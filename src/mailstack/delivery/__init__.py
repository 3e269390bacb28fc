"""Delivery: what the MX, submission, the queue and (next) JMAP EmailSubmission
share to put a message somewhere and say how it went.

Modules: `received` (the ``Received:`` time stamp line, RFC 5321 §4.4 with
RFC 3848 protocol names, and the count of them that detects loops, RFC 5321
§6.3), `local` (final delivery into our own mailboxes: one copy per mailbox
with its ``Return-Path:`` and ``Delivered-To:``, all or nothing or to those
with room, and the RFC 3461/3464 reports that implies) and `status` (what one
attempt came to for one recipient, local or over SMTP, with its RFC 3463 code,
and whether the sender asked to hear of it, RFC 3461 §4.1 NOTIFY), and `ids`
(the ids that name a message in ``Received:``, replies and the log, unique
for the life of the data directory).

Nothing here speaks a protocol on the wire: the SMTP servers and the queue
runner call it, and it calls the store.
"""
