"""The signing-key part of the store (DKIM keys per domain and selector).

Filled by the message-authentication work: KEYS_SCHEMA is executed at open,
and SqliteKeysMixin's methods use SqliteStore's _read/_write primitives.
"""

KEYS_SCHEMA = ""


class SqliteKeysMixin:
    """Key methods of SqliteStore (added by the message-authentication work)."""
