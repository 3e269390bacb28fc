"""The outbound queue part of the store.

Filled by the mail-out work: QUEUE_SCHEMA is executed at open, and
SqliteQueueMixin's methods use SqliteStore's _read/_write primitives.
"""

QUEUE_SCHEMA = ""


class SqliteQueueMixin:
    """Queue methods of SqliteStore (added by the mail-out work)."""
