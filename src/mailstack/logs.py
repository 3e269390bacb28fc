"""The node's log: the `[log]` table's level, file and format.

Text lines are ``TIME LEVEL LOGGER: MESSAGE``; an event's message is
``EVENT key=value ...`` (`common.events`). With ``json = true`` each line is
one JSON object: ``time``, ``level``, ``logger``, ``message``, and for an
event ``event`` and each of its fields as a key. The file is created 0600
(it names users and client addresses) and reopened when logrotate moves it.
`recent_problems` reads the last warnings and errors back for
`mailstack status`.
"""

from __future__ import annotations

import datetime
import json
import logging
import logging.handlers
import os
import sys
from collections import deque
from pathlib import Path
from typing import Any

from mailstack.config import Config
from mailstack.store.private import create_private

__all__ = ["JsonFormatter", "TEXT_FORMAT", "recent_problems", "setup"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PROBLEMS = ("WARNING", "ERROR", "CRITICAL")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if event is not None:
            line["event"] = event
            for key, value in getattr(record, "fields", {}).items():
                line.setdefault(key, value if isinstance(value, int | float | bool) else str(value))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Standard error as it is when a line is written, not when the handler
    was made (a replaced or closed sys.stderr must not break logging)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup(config: Config, *, verbose: bool = False) -> None:
    """Send the log where `[log]` says, in its format, from its level up."""
    path = config.log_path
    handler: logging.Handler
    if path is None:
        handler = _Stderr()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(create_private(path, os.O_WRONLY | os.O_APPEND))
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter() if config.log.json else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else config.log.level.upper())


def recent_problems(path: Path, count: int = 10, *, scan: int = 1 << 20) -> list[str]:
    """The last ``count`` warnings and errors of a log file (text or JSON
    lines), from its last ``scan`` octets."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - scan))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    found: deque[str] = deque(maxlen=count)
    for line in tail:
        if line.startswith("{"):
            try:
                level = json.loads(line).get("level")
            except (ValueError, AttributeError):
                continue
        else:
            words = line.split(" ", 3)
            level = words[2] if len(words) > 2 else None
        if level in PROBLEMS:
            found.append(line)
    return list(found)
