"""The JMAP API without HTTP (RFC 8620 §3): a Request object in, a Response
object out.

``decode`` turns a body into JSON (I-JSON, RFC 7493: UTF-8, no duplicate
names, no lone surrogates) and ``parse_request`` checks it against the
Request type (§3.3), ``using`` included, and ``maxCallsInRequest``; each
failure is a ``RequestError``, a request-level error whose ``problem()`` is
the RFC 7807 problem details object (§3.6.1). ``process`` then runs the
method calls in order (§3.5): result references resolved (§3.7), creation
ids substituted, each handler's response or method-level error (§3.6.2)
added, and the follow-up invocations a handler asks for (``Call.also``) run
right after it. A store that cannot be reached now (a PostgreSQL restart) is
``serverUnavailable``; a handler's unexpected exception is logged and
answered ``serverFail``; neither's text reaches the client.

``maxSizeRequest`` and ``maxConcurrentRequests`` are for the caller that
reads the body (``mailstack.http``, the WebSocket), which also knows the
session state.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mailstack.common.events import log_event
from mailstack.errors import StoreUnavailable
from mailstack.jmap import (
    blobs,
    core,
    email_changes,
    email_get,
    email_query,
    email_set,
    identity,
    mailbox,
    principal,
    pushsub,
    snippet,
    submission,
    thread,
    vacation,
)
from mailstack.jmap.core import CORE
from mailstack.jmap.method import Args, Call, Method, MethodError
from mailstack.jmap.problem import RequestError

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.jmap.sharing import SharedAccount
    from mailstack.store import Account

log = logging.getLogger("mailstack.jmap")


# The modules whose METHODS the API serves (mailstack.jmap.method).
MODULES: tuple[ModuleType, ...] = (
    core, blobs, pushsub, mailbox, thread, email_get, snippet, email_query, email_changes,
    email_set, principal,
    identity, submission, vacation,
)

# Arguments holding ids where "#creationId" stands for the id the server
# gave that creation earlier in the request (RFC 8620 §5.3): /get ids, /set
# destroy; /set update's keys are handled apart. Handlers substitute other
# id-valued properties with method.created_id().
_ID_LIST_ARGUMENTS = ("ids", "destroy")


def method_table(modules: Collection[ModuleType] = MODULES) -> dict[str, Method]:
    """Method name -> Method, from each module's METHODS."""
    table: dict[str, Method] = {}
    for module in modules:
        table.update(module.METHODS)
    return table


def capabilities(methods: Mapping[str, Method]) -> frozenset[str]:
    """The capabilities these methods need, core included."""
    return frozenset({CORE, *(method.capability for method in methods.values())})


@dataclass(frozen=True, slots=True)
class Request:
    """A checked Request object (RFC 8620 §3.3)."""

    using: frozenset[str]
    method_calls: list[tuple[str, Args, str]]
    created_ids: dict[str, str] | None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def decode(body: bytes) -> Any:
    """The JSON value of a request body; RequestError ``notJSON`` when it is
    not I-JSON (RFC 8620 §3.1 requires it; RFC 7493)."""
    try:
        value = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_unique_names,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RequestError("notJSON", "The body is not JSON in UTF-8 (I-JSON).") from None
    if _SURROGATE_ESCAPE.search(body) and not _well_formed(value):
        raise RequestError("notJSON", "A string holds an unpaired surrogate (I-JSON).")
    return value


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member name")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _well_formed(value: Any) -> bool:
    """No string (key or value) holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return True


def encode(value: Any) -> bytes:
    """A response body: compact JSON in UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def parse_request(value: Any, *, known: Collection[str], max_calls: int) -> Request:
    """The Request in a decoded body, checked: RequestError ``notRequest``
    when it does not match the type, ``unknownCapability`` for a capability
    in ``using`` the server lacks (§3.6.1), ``limit`` past maxCallsInRequest.
    Properties the type does not have are ignored (the WebSocket's ``@type``
    and ``id``, RFC 8887 §4.3)."""
    if not isinstance(value, dict):
        raise RequestError("notRequest", "The request is not a JSON object.")
    using = value.get("using")
    if not isinstance(using, list) or not all(isinstance(item, str) for item in using):
        raise RequestError("notRequest", "using must be an array of strings.")
    calls = value.get("methodCalls")
    if not isinstance(calls, list):
        raise RequestError("notRequest", "methodCalls must be an array.")
    created = value.get("createdIds")
    if created is not None and not (
        isinstance(created, dict) and all(isinstance(v, str) for v in created.values())
    ):
        raise RequestError("notRequest", "createdIds must map ids to ids.")
    unknown = sorted(set(using) - set(known))
    if unknown:
        raise RequestError(
            "unknownCapability",
            f"The server does not support the capability {unknown[0][:200]}.",
        )
    if len(calls) > max_calls:
        raise RequestError(
            "limit",
            f"The request has more than {max_calls} method calls.",
            limit="maxCallsInRequest",
        )
    invocations: list[tuple[str, Args, str]] = []
    for call in calls:
        if not (
            isinstance(call, list)
            and len(call) == 3
            and isinstance(call[0], str)
            and isinstance(call[1], dict)
            and isinstance(call[2], str)
        ):
            raise RequestError(
                "notRequest", "Each method call must be [name, arguments, call id]."
            )
        invocations.append((call[0], call[1], call[2]))
    return Request(frozenset(using), invocations, None if created is None else dict(created))


async def process(
    node: Node,
    user: Account,
    request: Request,
    *,
    session_state: str,
    methods: Mapping[str, Method] | None = None,
    shared: dict[int, SharedAccount] | None = None,
) -> Args:
    """The Response object (RFC 8620 §3.4) for a checked request. ``shared``:
    the accounts shared with the user (``sharing.shared_accounts``, read with
    the session state), which calls may then name; None: the user's own only."""
    shared = shared or {}
    table = method_table() if methods is None else methods
    created_ids = dict(request.created_ids or {})
    responses: list[list[Any]] = []
    for name, args, call_id in request.method_calls:
        call = Call(node, user, request.using, call_id, created_ids, shared=shared)
        await _invoke(table, call, name, args, responses, resolve=True)
    out: Args = {"methodResponses": responses, "sessionState": session_state}
    if request.created_ids is not None:
        out["createdIds"] = created_ids  # §3.4: only when the request had it
    return out


async def _invoke(
    table: Mapping[str, Method],
    call: Call,
    name: str,
    args: Args,
    responses: list[list[Any]],
    *,
    resolve: bool,
) -> None:
    try:
        method = table.get(name)
        # §3.6.2; a method whose capability is not in `using` is not known
        # to this request either (§3.3). A follow-up the server makes itself
        # (RFC 8621 §7.5: the implicit Email/set of EmailSubmission/set) is
        # not the client's call, whatever it is using.
        if method is None or (resolve and method.capability not in call.using):
            raise MethodError("unknownMethod")
        if resolve:
            args = resolve_references(args, responses)
        args = _substitute_created(args, call.created_ids)
        result = await method.handler(call, args)
    except MethodError as exc:
        responses.append(["error", exc.response(), call.call_id])
        return
    except StoreUnavailable as exc:
        # RFC 8620 §3.6.2: temporary; the client tries again after a while.
        log_event(log, logging.WARNING, "jmap method failed", {"method": name[:100], "error": exc})
        responses.append(["error", {"type": "serverUnavailable"}, call.call_id])
        return
    except Exception:
        log.exception("method failed")
        log_event(log, logging.ERROR, "jmap method failed", {"method": name[:100]})
        responses.append(["error", {"type": "serverFail"}, call.call_id])
        return
    responses.append([name, result, call.call_id])
    follow_ups, call.also = call.also, []
    for also_name, also_args in follow_ups:
        also_call = Call(
            call.node, call.user, call.using, call.call_id, call.created_ids, shared=call.shared
        )
        await _invoke(table, also_call, also_name, also_args, responses, resolve=False)


def resolve_references(args: Args, responses: list[list[Any]]) -> Args:
    """The arguments with each ``#name`` ResultReference replaced by the
    value it points at (RFC 8620 §3.7); MethodError ``invalidArguments`` when
    an argument is given both plain and referenced, ``invalidResultReference``
    when a reference cannot be evaluated."""
    if not any(key.startswith("#") for key in args):
        return args
    out: Args = {}
    for key, value in args.items():
        if not key.startswith("#"):
            out[key] = value
            continue
        plain = key[1:]
        if plain in args:
            raise MethodError(
                "invalidArguments",
                f"{plain} is given both directly and as a result reference.",
                arguments=[plain],
            )
        out[plain] = _evaluate(value, responses)
    return out


def _evaluate(reference: Any, responses: list[list[Any]]) -> Any:
    if not (
        isinstance(reference, dict)
        and isinstance(reference.get("resultOf"), str)
        and isinstance(reference.get("name"), str)
        and isinstance(reference.get("path"), str)
    ):
        raise MethodError(
            "invalidResultReference", "A ResultReference needs resultOf, name and path strings."
        )
    for name, result, call_id in responses:
        if call_id == reference["resultOf"]:
            if name != reference["name"]:
                raise MethodError(
                    "invalidResultReference",
                    "The referenced response is not of the method named.",
                )
            try:
                return pointer(result, reference["path"])
            except LookupError:
                raise MethodError(
                    "invalidResultReference", "The path does not exist in the referenced response."
                ) from None
    raise MethodError("invalidResultReference", "No earlier response has that call id.")


def pointer(document: Any, path: str) -> Any:
    """A JSON Pointer (RFC 6901) evaluated with JMAP's ``*`` (RFC 8620 §3.7):
    on an array, ``*`` applies the rest of the path to every item, and item
    results that are arrays are flattened into the result. LookupError when
    the path does not exist."""
    if path == "":
        return document
    if not path.startswith("/"):
        raise LookupError(path)
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]
    return _walk(document, tokens)


def _walk(value: Any, tokens: list[str]) -> Any:
    for index, token in enumerate(tokens):
        if isinstance(value, list):
            if token == "*":
                out: list[Any] = []
                for item in value:
                    result = _walk(item, tokens[index + 1 :])
                    if isinstance(result, list):
                        out.extend(result)
                    else:
                        out.append(result)
                return out
            if not token.isascii() or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                raise LookupError(token)
            position = int(token)
            if position >= len(value):
                raise LookupError(token)
            value = value[position]
        elif isinstance(value, dict):
            if token not in value:
                raise LookupError(token)
            value = value[token]
        else:
            raise LookupError(token)
    return value


def _substitute_created(args: Args, created_ids: Mapping[str, str]) -> Args:
    """``#creationId`` in id-list arguments and /set update keys replaced by
    the id made earlier in the request; unknown ones are left for the
    handler to find not found."""
    if not created_ids:
        return args
    out = dict(args)
    for key in _ID_LIST_ARGUMENTS:
        ids = out.get(key)
        if isinstance(ids, list):
            out[key] = [_created(item, created_ids) for item in ids]
    update = out.get("update")
    if isinstance(update, dict):
        out["update"] = {_created(key, created_ids): patch for key, patch in update.items()}
    return out


def _created(value: Any, created_ids: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("#"):
        return created_ids.get(value[1:], value)
    return value
