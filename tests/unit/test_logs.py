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
        text = second.getvalue()
        assert "Logging error" not in text
        assert text.endswith("WARNING mailstack.test: after the first closed\n")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
