"""Signed links to a message's inline images (``cid:``), for its sandboxed
frame: the frame has an opaque origin and sends no cookie, so the link itself
says which account's part it is, signed (HMAC-SHA256, the session key) with
an expiry. Only image types are linked; the part is served with
``nosniff`` and a CSP that lets nothing run."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from mailstack.webmail.imageproxy import IMAGE_TYPES

PATH = "/webmail/part"


@dataclass
class PartLinks:
    key: bytes
    lifetime: float = 86400.0
    clock: Callable[[], float] = time.time

    def _signature(self, account: int, blob_id: str, kind: str, expires: int) -> str:
        text = f"part\n{account}\n{blob_id}\n{kind}\n{expires}"
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def link(self, account: int, blob_id: str, kind: str) -> str | None:
        """The link to an image part; None for a part that is not an image we show."""
        kind = kind.lower()
        if kind not in IMAGE_TYPES:
            return None
        expires = int(self.clock() + self.lifetime)
        query = {
            "a": str(account),
            "b": blob_id,
            "t": kind,
            "e": str(expires),
            "s": self._signature(account, blob_id, kind, expires),
        }
        return f"{PATH}?{urlencode(query)}"

    def check(self, query: dict[str, str]) -> tuple[int, str, str] | None:
        """(account, blob id, type) of a link made here and not expired."""
        try:
            account, blob_id, kind = int(query["a"]), query["b"], query["t"]
            expires, given = int(query["e"]), query["s"]
        except (KeyError, ValueError):
            return None
        expected = self._signature(account, blob_id, kind, expires)
        if not hmac.compare_digest(given.encode(), expected.encode()) or expires < self.clock():
            return None
        return account, blob_id, kind
