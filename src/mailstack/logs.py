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

import atexit
import datetime
import json
import logging
import logging.handlers
import os
import queue
import sys
from collections import deque
from pathlib import Path
from typing import Any

from mailstack.config import Config
from mailstack.store.private import create_private

__all__ = ["JsonFormatter", "TEXT_FORMAT", "flush", "recent_problems", "setup"]

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
        elif record.exc_text:  # formatted before it crossed to the writer thread
            line["exception"] = record.exc_text
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


class _Handoff(logging.handlers.QueueHandler):
    """Hands each record to the writer thread as it is. QueueHandler would
    format it first, on the caller's thread: the event loop's, where a
    message accepted costs a line (formatting and the write took about
    60 µs of the loop per message; the hand-off takes a few)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.exc_info:
            # A traceback cannot cross to the other thread as an object.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


_writer: logging.handlers.QueueListener | None = None


def flush() -> None:
    """Write every line logged so far (ends the writer until the next setup)."""
    _stop_writer()


def _stop_writer() -> None:
    """Write what is still queued, then end the writer thread."""
    global _writer
    # Nothing we write names the caller's file and line, the thread or the
    # process: logging need not walk the stack for each record to find them
    # (the logging HOWTO's "Optimization").
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if _writer is not None:
        _writer.stop()
        _writer = None


atexit.register(_stop_writer)


def setup(config: Config, *, verbose: bool = False) -> None:
    """Send the log where `[log]` says, in its format, from its level up.
    Lines are written by a thread of their own (`_Handoff`), so logging
    never waits for a disk or a pipe on the event loop."""
    global _writer
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
    _stop_writer()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _writer = logging.handlers.QueueListener(records, handler)
    _writer.start()
    root.addHandler(_Handoff(records))
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
