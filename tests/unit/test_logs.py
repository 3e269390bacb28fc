"""The node's log handler: `[log]` on standard error follows sys.stderr."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

from mailstack import logs
from mailstack.config import Config


def test_standard_error_is_looked_up_when_a_line_is_written(tmp_path: Path, monkeypatch) -> None:
    """A handler made while sys.stderr was one file keeps working after it is
    replaced and closed (a test's capture, a daemon's redirection): a thread
    logging later must not hit 'I/O operation on closed file'."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", first)
        logs.setup(Config.defaults(tmp_path))
        first.close()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("mailstack.test").warning("after the first closed")
        logs.flush()  # lines are written by the log's own thread
        text = second.getvalue()
        assert "Logging error" not in text
        assert text.endswith("WARNING mailstack.test: after the first closed\n")
    finally:
        logs.flush()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def test_lines_leave_the_callers_thread_and_keep_their_traceback(tmp_path: Path, monkeypatch):
    """The event loop only hands a record over; the writer thread formats it,
    a traceback included (formatted before the hand-off)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", out)
        logs.setup(Config.defaults(tmp_path))
        assert [type(h).__name__ for h in root.handlers] == ["_Handoff"]
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("mailstack.test").exception("it failed")
        logs.flush()
        text = out.getvalue()
        assert "ERROR mailstack.test: it failed" in text
        assert "ValueError: boom" in text
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
