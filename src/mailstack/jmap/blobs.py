"""JMAP blobs (RFC 8620 §6): upload, download, and the blobs a method reads.

Two kinds of blob id (``jmap.ids``): ``G<email id>`` is an email's whole
message as stored; ``U<number>`` an upload (``store.uploads``: files of the node on SQLite,
rows of the store on PostgreSQL, so that every node finds it), kept for
``[jmap] upload_hours`` (RFC 8620 §6.1: at least an hour). A blob belongs to
one account: the id of another account's blob is not found.

``blob`` and ``blob_bytes`` are what methods use (Email/import, Email/parse,
Blob/copy); ``upload`` and ``download`` are the HTTP handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from aiohttp.helpers import content_disposition_header

from mailstack.common.webkeys import ACCOUNT
from mailstack.errors import StoreError
from mailstack.jmap import emailview, ids
from mailstack.jmap.core import CORE
from mailstack.jmap.method import Args, Call, Method, MethodError, account_id
from mailstack.jmap.problem import RequestError
from mailstack.store.uploads import FileUploads, StoreUploads, Upload, UploadArea, Uploads

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.store import Account

MESSAGE_TYPE = "message/rfc822"
OCTETS = "application/octet-stream"
CHUNK = 64 * 1024

# RFC 6838 §4.2 type/subtype, then parameters as RFC 9110 §8.3.1 writes them.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\\x00-\x1f\x7f]|\\.)*\"))*"
)


@dataclass(frozen=True, slots=True)
class Blob:
    """A blob of an account: its id, size and media type (``None`` when the
    blob itself does not say, as an email's message is message/rfc822)."""

    blob_id: str
    account_id: int
    size: int
    type: str
    upload: Upload | None = None  # None: an email's message
    mailbox_id: int = 0
    uid: int = 0
    part: bytes | None = None  # a part of an email (emailview.part_bytes), decoded


def uploads(node: Node) -> UploadArea:
    """The node's own upload files (a node on SQLite)."""
    return UploadArea(node.config.data_dir / "uploads")


def upload_store(node: Node) -> Uploads:
    """Where the node keeps uploads: in a PostgreSQL store, shared by every
    node on it; else files of the node's data directory."""
    if node.config.store.backend == "postgresql":
        return StoreUploads(node.store)
    return FileUploads(uploads(node))


async def blob(node: Node, account: int, blob_id: object) -> Blob | None:
    """The account's blob with this id; None for any other id."""
    store = node.store
    assert store is not None
    if isinstance(blob_id, str) and emailview.decode_part_blob_id(blob_id) is not None:
        part = await emailview.part_bytes(store, account, blob_id)
        return None if part is None else Blob(blob_id, account, len(part), OCTETS, part=part)
    email = ids.decode(ids.EMAIL_BLOB, blob_id)
    if email is not None:
        found = await store.emails_by_id(account, [email])
        meta = found.get(email)
        if meta is None:
            return None
        return Blob(str(blob_id), account, meta.size, MESSAGE_TYPE, None, meta.mailbox_id, meta.uid)
    number = ids.decode(ids.UPLOAD_BLOB, blob_id)
    if number is None:
        return None
    upload = await upload_store(node).get(account, number)
    if upload is None or upload.created < time.time() - node.config.jmap.upload_hours * 3600:
        return None
    return Blob(str(blob_id), account, upload.size, upload.type, upload)


async def blob_bytes(node: Node, account: int, blob_id: object) -> bytes | None:
    """The octets of the account's blob with this id; None when there is none."""
    found = await blob(node, account, blob_id)
    return None if found is None else await read(node, found)


async def read(node: Node, found: Blob) -> bytes:
    if found.part is not None:
        return found.part
    if found.upload is not None:
        return await upload_store(node).read(found.upload)
    assert node.store is not None
    return await node.store.message_bytes(found.mailbox_id, found.uid)


async def copy(node: Node, found: Blob, to_account: int) -> str:
    """The blob copied to another account as an upload there; its new id."""
    data = await read(node, found)
    sink = await upload_store(node).begin(to_account)
    try:
        await sink.write(data)
        made = await sink.commit(found.type)
    except BaseException:
        await sink.abort()
        raise
    return ids.encode(ids.UPLOAD_BLOB, made.number)


# --- HTTP ---------------------------------------------------------------


def _reachable(node: Node, user: Account, jmap_account: str) -> int | None:
    """The store account behind an accountId of the URL, if the user may
    reach it (the same check as a method's ``accountId``)."""
    try:
        return account_id(Call(node, user, frozenset(), ""), {"accountId": jmap_account})
    except MethodError:
        return None


def limit_problem(status: int, detail: str, limit: str) -> web.Response:
    error = RequestError("limit", detail, status=status, limit=limit)
    return problem_response(error)


def problem_response(error: RequestError, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(error.problem()).encode(),
        status=error.status,
        content_type="application/problem+json",
        headers=headers,
    )


async def upload(request: web.Request, node: Node) -> web.StreamResponse:
    """POST to uploadUrl (RFC 8620 §6.1): 201 with accountId, blobId, type
    and size once the blob is durable."""
    user: Account = request[ACCOUNT]
    jmap_account = request.match_info["accountId"]
    account = _reachable(node, user, jmap_account)
    if account is None:
        return problem_response(RequestError("about:blank", "No such account.", status=404))
    limits = node.config.jmap
    media_type = request.headers.get(hdrs.CONTENT_TYPE, OCTETS).strip() or OCTETS
    if len(media_type) > 255 or not _MEDIA_TYPE.fullmatch(media_type):
        return problem_response(RequestError("about:blank", "Bad Content-Type.", status=400))
    if request.content_length is not None and request.content_length > limits.max_size_upload:
        return limit_problem(413, "The blob is larger than maxSizeUpload.", "maxSizeUpload")
    if not node.jmap_shared.uploads.enter(account, limits.max_concurrent_upload):
        return limit_problem(
            429, "Too many uploads at once for this account.", "maxConcurrentUpload"
        )
    try:
        made = await _receive(request, node, account, media_type)
    finally:
        node.jmap_shared.uploads.leave(account)
    if isinstance(made, web.StreamResponse):
        return made
    body = {
        "accountId": jmap_account,
        "blobId": ids.encode(ids.UPLOAD_BLOB, made.number),
        "type": made.type,
        "size": made.size,
    }
    return web.json_response(body, status=201, headers={"Cache-Control": "no-store"})


async def _receive(
    request: web.Request, node: Node, account: int, media_type: str
) -> Upload | web.StreamResponse:
    area = upload_store(node)
    limit = node.config.jmap.max_size_upload
    sink = await area.begin(account)
    try:
        async with asyncio.timeout(node.limits.http_body_timeout):
            async for chunk in request.content.iter_chunked(CHUNK):
                if sink.size + len(chunk) > limit:
                    await sink.abort()
                    return limit_problem(
                        413, "The blob is larger than maxSizeUpload.", "maxSizeUpload"
                    )
                await sink.write(chunk)
        made = await sink.commit(media_type)
    except TimeoutError:
        await sink.abort()
        slow = RequestError("about:blank", "The body came too slowly.", status=408)
        return problem_response(slow)
    except BaseException:
        await sink.abort()
        raise
    # RFC 8620 §6.1: kept at least an hour; older uploads go now.
    older = time.time() - node.config.jmap.upload_hours * 3600
    with contextlib.suppress(OSError, StoreError):
        await area.sweep(older)
    return made


async def download(request: web.Request, node: Node) -> web.StreamResponse:
    """GET of downloadUrl (RFC 8620 §6.2): the octets, with the name and type
    the URL gives, as an attachment never sniffed."""
    user: Account = request[ACCOUNT]
    account = _reachable(node, user, request.match_info["accountId"])
    found = None if account is None else await blob(node, account, request.match_info["blobId"])
    if found is None:
        return problem_response(RequestError("about:blank", "No such blob.", status=404))
    media_type = request.query.get("type", "")
    if not _MEDIA_TYPE.fullmatch(media_type) or len(media_type) > 255:
        media_type = OCTETS
    name = request.match_info["name"]
    headers = {
        hdrs.CONTENT_TYPE: media_type,
        hdrs.CONTENT_DISPOSITION: content_disposition_header("attachment", filename=name),
        "X-Content-Type-Options": "nosniff",
        # RFC 8620 §6.2: a blob never changes; private, it is one user's.
        hdrs.CACHE_CONTROL: "private, immutable, max-age=31536000",
        # Whatever the type claims, nothing in it runs in our origin.
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    return web.Response(body=await read(node, found), headers=headers)


# --- Blob/copy (RFC 8620 §6.3) ------------------------------------------


async def blob_copy(call: Call, args: Args) -> Args:
    unknown = sorted(set(args) - {"fromAccountId", "accountId", "blobIds"})
    blob_ids = args.get("blobIds")
    if unknown or not isinstance(blob_ids, list) or not all(isinstance(b, str) for b in blob_ids):
        raise MethodError(
            "invalidArguments", "Blob/copy takes fromAccountId, accountId and blobIds.",
            arguments=unknown or ["blobIds"],
        )
    try:
        source = account_id(call, {"accountId": args.get("fromAccountId")})
    except MethodError:
        raise MethodError("fromAccountNotFound") from None
    target = account_id(call, args)
    copied: dict[str, str] = {}
    not_copied: dict[str, Args] = {}
    for blob_id in dict.fromkeys(blob_ids):
        found = await blob(call.node, source, blob_id)
        if found is None:
            not_copied[blob_id] = {"type": "notFound"}
        else:
            copied[blob_id] = await copy(call.node, found, target)
    return {
        "fromAccountId": args["fromAccountId"],
        "accountId": args["accountId"],
        "copied": copied or None,
        "notCopied": not_copied or None,
    }


METHODS: dict[str, Method] = {
    "Blob/copy": Method(CORE, blob_copy),
}
