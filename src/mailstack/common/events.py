"""Log lines that a program reads as well as a person: one line per event,
``EVENT key=value ...``, such as

    login failed protocol=pop3 user=bob@example.org client=192.0.2.9 reason=credentials failures=3
    message accepted protocol=smtp id=3-17 from=<a@b.example> to=<bob@example.org> size=812 ...

A value that could be misread (spaces, quotes, ``=``, control characters,
nothing at all) is written as a JSON string; the rest bare, so fail2ban's
and grep's patterns stay simple. The fields also travel on the record
(``event``, ``fields``) for the JSON lines of ``[log] json = true``
(`mailstack.logs`). docs/configuration.md, "Log", lists every event.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping

__all__ = ["field", "log_event"]

_BARE = re.compile(r"[!#-<>-\[\]-~]+")  # printable ASCII but '"', '=', '\\'


def field(value: object) -> str:
    """A field's value as the line shows it: bare when that cannot be misread,
    else a JSON string."""
    if type(value) is int:
        return str(value)
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text)


def log_event(
    logger: logging.Logger, level: int, event: str, fields: Mapping[str, object]
) -> None:
    """Log ``event`` with its fields (None values left out), in that order."""
    if not logger.isEnabledFor(level):
        return
    kept = {key: value for key, value in fields.items() if value is not None}
    text = " ".join([event, *(f"{key}={field(value)}" for key, value in kept.items())])
    logger.log(level, "%s", text, extra={"event": event, "fields": kept})
