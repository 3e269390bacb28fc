"""Message ids: the ``id`` of a ``Received:`` field (RFC 5321 §4.4) and of the
``250`` reply that accepted the message, the name the log gives it.

An id is ``RUN-N``: the node's run number, which the store hands out once
per start and never again, then a count within the run. So an id names one
message for the life of the data directory; queue ids ("queued as 17") are
the store's own and never reused either. ``-`` keeps the id an RFC 5321
Atom.
"""

from __future__ import annotations

import itertools

__all__ = ["MessageIds"]


class MessageIds:
    """The ids of one node run."""

    def __init__(self, run: int) -> None:
        self.run = run
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self.run}-{next(self._count)}"
