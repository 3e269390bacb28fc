"""The zone part of the store (DNS zones mailstack manages).

Filled by the DNS work: ZONES_SCHEMA is executed at open, and
SqliteZonesMixin's methods use SqliteStore's _read/_write primitives.
"""

ZONES_SCHEMA = ""


class SqliteZonesMixin:
    """Zone methods of SqliteStore (added by the DNS work)."""
