"""Mailbox/get, /changes, /query, /queryChanges and /set (RFC 8621 §2).

A JMAP Mailbox is a store mailbox: its ``name`` is the last component of
the IMAP name (delimiter ``/``), its ``parentId`` the mailbox named by the
rest, its ``role`` the RFC 6154 special use lowercased without the
backslash (INBOX is ``inbox``), ``sortOrder`` and ``isSubscribed`` what the
store keeps, and the four counts the store's ``mailbox_counts``. A mailbox
whose IMAP parent does not exist (IMAP allows it) is a top-level mailbox
whose name keeps the missing levels.

States and query states are the account's state (one change counter);
Mailbox/queryChanges reports every mailbox changed since the old state as
removed and those of them in the results as added, which RFC 8620 §5.6
allows; with ``sortAsTree`` or ``filterAsTree`` a change to one mailbox can
move others, so those queries cannot calculate changes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailstack.errors import AlreadyExists, NotFound
from mailstack.jmap import ids, sharing
from mailstack.jmap.email_query import (
    MAIL,
    collate,
    integer,
    invalid,
    parse_state,
    store_of,
    unsigned,
)
from mailstack.jmap.email_query import (
    SORT_PROPERTIES as SORT_PROPERTIES_EMAIL,
)
from mailstack.jmap.keywords import visible
from mailstack.jmap.method import (
    Args,
    Call,
    Method,
    MethodError,
    check_objects_in_get,
    check_objects_in_set,
    combine,
    created_id,
    filter_operator,
)
from mailstack.jmap.sharing import Reach
from mailstack.store.contract import Mailbox, MailboxCounts

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.jmap.session import SessionAccount

DELIMITER = "/"
# The IANA "IMAP Mailbox Name Attributes" registry entries JMAP has roles for
# (RFC 8621 §2, RFC 8457 \Important).
ROLES = ("all", "archive", "drafts", "flagged", "important", "inbox", "junk", "sent",
         "trash")
COUNTS = ("totalEmails", "unreadEmails", "totalThreads", "unreadThreads")
PROPERTIES = (
    "id", "name", "parentId", "role", "sortOrder", *COUNTS, "myRights", "isSubscribed",
)
# RFC 9670 §4: with the principals capability, who the mailbox is shared with.
SHARE_WITH = "shareWith"
SETTABLE = frozenset({"name", "parentId", "role", "sortOrder", "isSubscribed", SHARE_WITH})
MAX_NAME = 255  # characters of one name component
MAX_SORT_ORDER = 2**32 - 1
def mail_capability(node: Node, account: SessionAccount) -> dict[str, Any]:
    """The account's ``urn:ietf:params:jmap:mail`` capability (RFC 8621 §1.3.1)."""
    return {
        "maxMailboxesPerEmail": 1,  # a message is in exactly one mailbox
        "maxMailboxDepth": None,
        "maxSizeMailboxName": MAX_NAME,
        "maxSizeAttachmentsPerEmail": node.limits.message_size,
        "emailQuerySortOptions": sorted(SORT_PROPERTIES_EMAIL),
        # A shared account's top level is its owner's (RFC 4314 k right).
        "mayCreateTopLevelMailbox": account.is_personal and not account.is_read_only,
    }


def role_of(mailbox: Mailbox) -> str | None:
    if mailbox.name.upper() == "INBOX":
        return "inbox"
    if mailbox.special_use:
        role = mailbox.special_use.lstrip("\\").lower()
        return role if role in ROLES else None
    return None


def special_use_of(role: str) -> str:
    return "\\" + role.capitalize()


def my_rights(mailbox: Mailbox, reach: Reach) -> dict[str, bool]:
    """``myRights``: the user's RFC 4314 rights on the mailbox (the owner
    has them all; ``sharing.mailbox_rights`` maps them). INBOX can be
    neither renamed nor destroyed: JMAP ids would not survive IMAP's rename
    of INBOX (RFC 3501 §6.3.5), and every account has one."""
    out = sharing.mailbox_rights(reach.rights(mailbox.id))
    if mailbox.name.upper() == "INBOX":
        out["mayRename"] = out["mayDelete"] = False
    return out


@dataclass(slots=True)
class Tree:
    """An account's mailboxes with their JMAP parent and name."""

    mailboxes: dict[int, Mailbox]
    by_name: dict[str, Mailbox]

    @classmethod
    def of(cls, mailboxes: Sequence[Mailbox]) -> Tree:
        return cls({m.id: m for m in mailboxes}, {m.name: m for m in mailboxes})

    @classmethod
    async def read(cls, call: Call, reach: Reach) -> Tree:
        """The account's mailboxes the call may see: all of the user's own,
        the shared ones of another account (``Reach``)."""
        mailboxes = await store_of(call).mailbox_list(reach.account_id)
        shown = reach.visible_mailboxes()
        return cls.of([m for m in mailboxes if shown is None or m.id in shown])

    def parent(self, mailbox: Mailbox) -> Mailbox | None:
        """The nearest existing IMAP ancestor."""
        name = mailbox.name
        while DELIMITER in name:
            name = name.rsplit(DELIMITER, 1)[0]
            found = self.by_name.get(name)
            if found is not None:
                return found
        return None

    def parent_id(self, mailbox: Mailbox) -> int | None:
        parent = self.parent(mailbox)
        return None if parent is None else parent.id

    def name(self, mailbox: Mailbox) -> str:
        parent = self.parent(mailbox)
        return mailbox.name if parent is None else mailbox.name[len(parent.name) + 1 :]

    def children(self, mailbox_id: int) -> list[Mailbox]:
        return [m for m in self.mailboxes.values() if self.parent_id(m) == mailbox_id]

    def ancestors(self, mailbox: Mailbox) -> list[Mailbox]:
        out = []
        parent = self.parent(mailbox)
        while parent is not None:
            out.append(parent)
            parent = self.parent(parent)
        return out

    def full_name(self, parent_id: int | None, name: str) -> str:
        if parent_id is None:
            return name
        return f"{self.mailboxes[parent_id].name}{DELIMITER}{name}"


def mailbox_json(mailbox: Mailbox, tree: Tree, counts: MailboxCounts | None,
                 props: Sequence[str], reach: Reach,
                 share_with: dict[str, Any] | None = None) -> dict[str, Any]:
    counts = counts or MailboxCounts(0, 0, 0, 0)
    values: dict[str, Callable[[], Any]] = {
        "id": lambda: ids.encode(ids.MAILBOX, mailbox.id),
        "name": lambda: tree.name(mailbox),
        "parentId": lambda: (None if (p := tree.parent_id(mailbox)) is None
                             else ids.encode(ids.MAILBOX, p)),
        "role": lambda: role_of(mailbox),
        "sortOrder": lambda: mailbox.sort_order,
        "totalEmails": lambda: counts.total_emails,
        "unreadEmails": lambda: counts.unread_emails,
        "totalThreads": lambda: counts.total_threads,
        "unreadThreads": lambda: counts.unread_threads,
        "myRights": lambda: my_rights(mailbox, reach),
        # Subscriptions are the owner's: a shared mailbox is not subscribed.
        "isSubscribed": lambda: mailbox.subscribed and reach.personal,
        SHARE_WITH: lambda: share_with,
    }
    return {prop: values[prop]() for prop in props}


def _properties(call: Call, args: Args) -> list[str]:
    known: tuple[str, ...] = PROPERTIES
    if sharing.PRINCIPALS in call.using:
        known = (*PROPERTIES, SHARE_WITH)
    props = args.get("properties")
    if props is None:
        return list(known)
    if not isinstance(props, list) or not all(isinstance(p, str) for p in props):
        raise invalid("properties must be a list of strings")
    unknown = [p for p in props if p not in known]
    if unknown:
        raise MethodError("invalidArguments", f"unknown properties {unknown}",
                          arguments=["properties"])
    # RFC 8620 §5.1: the id is always returned.
    return list(dict.fromkeys(["id", *props]))


def _id_list(args: Args, name: str) -> list[Any] | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{name} must be a list of ids or null")
    return value


# -- Mailbox/get -------------------------------------------------------------


async def mailbox_get(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    wanted = _id_list(args, "ids")
    if wanted is not None:
        check_objects_in_get(call, len(wanted))
    props = _properties(call, args)
    store = store_of(call)
    state = await store.account_state(account)
    tree = await Tree.read(call, reach)
    counts = (await store.mailbox_counts(account)
              if any(p in COUNTS for p in props) else {})
    found: list[dict[str, Any]] = []
    not_found: list[Any] = []
    if wanted is None:
        chosen: list[Mailbox] = sorted(tree.mailboxes.values(), key=lambda m: m.id)
    else:
        chosen = []
        for jmap_id in dict.fromkeys(wanted):
            number = ids.decode(ids.MAILBOX, jmap_id)
            mailbox = tree.mailboxes.get(number) if number is not None else None
            if mailbox is None:
                not_found.append(jmap_id)
            else:
                chosen.append(mailbox)
    for mailbox in chosen:
        shared_with = None
        if SHARE_WITH in props and reach.may(mailbox.id, "a"):
            shared_with = await sharing.share_with(call.node, mailbox)
        found.append(mailbox_json(mailbox, tree, counts.get(mailbox.id), props, reach,
                                  shared_with))
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "state": str(state),
        "list": found,
        "notFound": not_found,
    }


# -- Mailbox/changes ---------------------------------------------------------


def changes_arguments(args: Args) -> tuple[str, int | None, int | None]:
    """sinceState (and the state it names, None when unknown) and
    maxChanges of a /changes call (RFC 8620 §5.2)."""
    since_state = args.get("sinceState")
    if not isinstance(since_state, str):
        raise invalid("sinceState must be a string")
    max_changes = args.get("maxChanges")
    if max_changes is not None and (not unsigned(max_changes) or max_changes == 0):
        raise invalid("maxChanges must be a positive UnsignedInt or null")
    return since_state, parse_state(since_state), max_changes


async def mailbox_changes(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    since_state, since, max_changes = changes_arguments(args)
    if since is None:
        raise MethodError("cannotCalculateChanges")
    changes = await store_of(call).mailbox_changes(account, since, max_changes)
    if changes is None:
        raise MethodError("cannotCalculateChanges")
    shown = reach.visible_mailboxes()
    created = [i for i in changes.created if shown is None or i in shown]
    updated = [i for i in changes.updated if shown is None or i in shown]
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": since_state,
        "newState": str(changes.state),
        "hasMoreChanges": changes.has_more,
        "created": [ids.encode(ids.MAILBOX, i) for i in created],
        "updated": [ids.encode(ids.MAILBOX, i) for i in updated],
        "destroyed": [ids.encode(ids.MAILBOX, i) for i in changes.destroyed],
        # RFC 8621 §2.2: the counts, when only they changed.
        "updatedProperties": list(COUNTS) if changes.counts_only and updated else None,
    }


# -- Mailbox/query and queryChanges -------------------------------------------

FILTER_CONDITIONS = frozenset({"parentId", "name", "role", "hasAnyRole", "isSubscribed"})
SORT_PROPERTIES = frozenset({"sortOrder", "name"})

Check = Callable[[Mailbox], bool]


def compile_filter(spec: object, tree: Tree, depth: int = 0) -> Check:
    """A FilterOperator or Mailbox FilterCondition (RFC 8621 §2.3)."""
    found = filter_operator(spec, depth)
    if found is not None:
        operator, conditions = found
        return combine(operator, [compile_filter(c, tree, depth + 1) for c in conditions])
    assert isinstance(spec, dict)
    checks = []
    for name, value in spec.items():
        if name not in FILTER_CONDITIONS:
            raise MethodError("unsupportedFilter", f"unknown filter property {name}")
        checks.append(_condition(name, value, tree))
    return lambda m: all(c(m) for c in checks)


def _condition(name: str, value: Any, tree: Tree) -> Check:
    if name == "parentId":
        if value is None:
            return lambda m: tree.parent_id(m) is None
        if not isinstance(value, str):
            raise invalid("parentId must be an Id or null")
        parent = ids.decode(ids.MAILBOX, value)
        return lambda m: parent is not None and tree.parent_id(m) == parent
    if name == "name":
        if not isinstance(value, str):
            raise invalid("name must be a string")
        needle = value.casefold()
        return lambda m: needle in tree.name(m).casefold()
    if name == "role":
        if value is not None and not isinstance(value, str):
            raise invalid("role must be a string or null")
        return lambda m: role_of(m) == value
    if not isinstance(value, bool):
        raise invalid(f"{name} must be a boolean")
    if name == "hasAnyRole":
        return lambda m: (role_of(m) is not None) == value
    return lambda m: m.subscribed == value


def _sort_key(comparators: list[tuple[str, bool, str]], tree: Tree
              ) -> Callable[[Mailbox], tuple[Any, ...]]:
    class Desc:
        __slots__ = ("value",)

        def __init__(self, value: Any) -> None:
            self.value = value

        def __lt__(self, other: Desc) -> bool:
            return bool(other.value < self.value)

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Desc) and bool(other.value == self.value)

    def key(mailbox: Mailbox) -> tuple[Any, ...]:
        parts: list[Any] = []
        for prop, ascending, collation in comparators:
            value = (mailbox.sort_order if prop == "sortOrder"
                     else collate(collation, tree.name(mailbox)))
            parts.append(value if ascending else Desc(value))
        parts.append(mailbox.id)  # a stable order (RFC 8620 §5.5)
        return tuple(parts)

    return key


def parse_sort(spec: object) -> list[tuple[str, bool, str]]:
    if spec is None:
        return []
    if not isinstance(spec, list):
        raise invalid("sort must be a list of Comparators")
    out = []
    for item in spec:
        if not isinstance(item, dict) or not isinstance(item.get("property"), str):
            raise invalid("a Comparator is an object with a property")
        if item["property"] not in SORT_PROPERTIES:
            raise MethodError("unsupportedSort", f"cannot sort by {item['property']}")
        ascending = item.get("isAscending", True)
        if not isinstance(ascending, bool):
            raise invalid("isAscending must be a boolean")
        collation = item.get("collation", "i;unicode-casemap")
        if collation not in ("i;ascii-casemap", "i;unicode-casemap", "i;octet"):
            raise MethodError("unsupportedSort", f"unknown collation {collation}")
        out.append((item["property"], ascending, collation))
    return out


@dataclass(frozen=True, slots=True)
class MailboxQuery:
    filter: object
    sort: list[tuple[str, bool, str]]
    sort_as_tree: bool
    filter_as_tree: bool

    @classmethod
    def from_args(cls, args: Args) -> MailboxQuery:
        flags = []
        for name in ("sortAsTree", "filterAsTree"):
            value = args.get(name, False)
            if not isinstance(value, bool):
                raise invalid(f"{name} must be a boolean")
            flags.append(value)
        query = cls(args.get("filter"), parse_sort(args.get("sort")), flags[0], flags[1])
        query.run(Tree({}, {}))  # check the filter before any store access
        return query

    def run(self, tree: Tree) -> list[Mailbox]:
        check = None if self.filter is None else compile_filter(self.filter, tree)
        mailboxes = list(tree.mailboxes.values())
        matched = {m.id for m in mailboxes if check is None or check(m)}
        if self.filter_as_tree:
            # RFC 8621 §2.3: "a Mailbox is only included in the query if all
            # its ancestors are also included in the query according to the
            # filter".
            matched = {i for i in matched
                       if all(a.id in matched for a in tree.ancestors(tree.mailboxes[i]))}
        key = _sort_key(self.sort, tree)
        if self.sort_as_tree:
            def tree_key(mailbox: Mailbox) -> tuple[Any, ...]:
                # Ancestors first, siblings by the comparators.
                path = [*reversed(tree.ancestors(mailbox)), mailbox]
                return tuple(key(m) for m in path)

            ordered = sorted(mailboxes, key=tree_key)
        else:
            ordered = sorted(mailboxes, key=key)
        return [m for m in ordered if m.id in matched]


def window(results: list[str], args: Args) -> tuple[int, list[str]]:
    """position/anchor/anchorOffset/limit (RFC 8620 §5.5): the index of the
    first id returned, and the ids."""
    position = args.get("position", 0)
    if not integer(position):
        raise invalid("position must be an Int")
    anchor = args.get("anchor")
    if anchor is not None and not isinstance(anchor, str):
        raise invalid("anchor must be an Id or null")
    anchor_offset = args.get("anchorOffset", 0)
    if not integer(anchor_offset):
        raise invalid("anchorOffset must be an Int")
    limit = args.get("limit")
    if limit is not None and not unsigned(limit):
        raise invalid("limit must be an UnsignedInt or null")
    total = len(results)
    if anchor is not None:
        try:
            start = max(results.index(anchor) + anchor_offset, 0)
        except ValueError:
            raise MethodError("anchorNotFound") from None
    else:
        start = position if position >= 0 else max(total + position, 0)
    end = total if limit is None else start + limit
    return min(start, total), results[start:end]


async def mailbox_query(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    query = MailboxQuery.from_args(args)
    calculate_total = args.get("calculateTotal", False)
    if not isinstance(calculate_total, bool):
        raise invalid("calculateTotal must be a boolean")
    store = store_of(call)
    state = await store.account_state(account)
    tree = await Tree.read(call, reach)
    results = [ids.encode(ids.MAILBOX, m.id) for m in query.run(tree)]
    position, chosen = window(results, args)
    response: Args = {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "queryState": str(state),
        "canCalculateChanges": not (query.sort_as_tree or query.filter_as_tree),
        "position": position,
        "ids": chosen,
    }
    if calculate_total:
        response["total"] = len(results)
    return response


async def mailbox_query_changes(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    query = MailboxQuery.from_args(args)
    since_state = args.get("sinceQueryState")
    if not isinstance(since_state, str):
        raise invalid("sinceQueryState must be a string")
    max_changes = args.get("maxChanges")
    if max_changes is not None and (not unsigned(max_changes) or max_changes == 0):
        raise invalid("maxChanges must be a positive UnsignedInt or null")
    up_to = args.get("upToId")
    if up_to is not None and not isinstance(up_to, str):
        raise invalid("upToId must be an Id or null")
    calculate_total = args.get("calculateTotal", False)
    if not isinstance(calculate_total, bool):
        raise invalid("calculateTotal must be a boolean")
    since = parse_state(since_state)
    if since is None or query.sort_as_tree or query.filter_as_tree:
        raise MethodError("cannotCalculateChanges")
    store = store_of(call)
    state = await store.account_state(account)
    if since > state:
        raise MethodError("cannotCalculateChanges")
    changed: set[int] = set()
    created: set[int] = set()
    if since < state:
        changes = await store.mailbox_changes(account, since)
        if changes is None:
            raise MethodError("cannotCalculateChanges")
        if not changes.counts_only:
            # Counts are neither filtered nor sorted on: a change of counts
            # alone moves nothing.
            changed.update(changes.created, changes.updated, changes.destroyed)
        else:
            changed.update(changes.created, changes.destroyed)
        created.update(changes.created)
    tree = await Tree.read(call, reach)
    results = query.run(tree)
    removed = sorted(changed - created)
    added = [{"id": ids.encode(ids.MAILBOX, m.id), "index": index}
             for index, m in enumerate(results) if m.id in changed]
    if max_changes is not None and len(removed) + len(added) > max_changes:
        raise MethodError("tooManyChanges")
    response: Args = {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldQueryState": since_state,
        "newQueryState": str(state),
        "removed": [ids.encode(ids.MAILBOX, i) for i in removed],
        "added": added,
    }
    if calculate_total:
        response["total"] = len(results)
    return response


# -- Mailbox/set ---------------------------------------------------------------


class SetError(Exception):
    """One object's SetError (RFC 8620 §5.3)."""

    def __init__(self, type: str, description: str | None = None,
                 properties: list[str] | None = None) -> None:
        super().__init__(type)
        self.type = type
        self.description = description
        self.properties = properties

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.description:
            out["description"] = self.description
        if self.properties:
            out["properties"] = self.properties
        return out


def _check_name(name: object) -> str:
    # RFC 8621 §2: name "MUST be ... at least 1 character" and "MUST be in
    # Net-Unicode form"; our delimiter cannot be part of a name.
    if (not isinstance(name, str) or not name or len(name) > MAX_NAME or DELIMITER in name
            or any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in name)):
        raise SetError("invalidProperties", "a name is 1-255 characters without '/' or controls",
                       ["name"])
    return unicodedata.normalize("NFC", name)  # RFC 5198 Net-Unicode


class MailboxSet:
    """One Mailbox/set call against the account's tree."""

    def __init__(self, call: Call, reach: Reach, tree: Tree) -> None:
        self.call = call
        self.reach = reach
        self.account = reach.account_id
        self.tree = tree
        self.store = store_of(call)

    async def refresh(self) -> None:
        self.tree = await Tree.read(self.call, self.reach)

    def require(self, mailbox_id: int | None, letters: str, what: str) -> None:
        """``forbidden`` unless the user holds these RFC 4314 rights on the
        mailbox (on the account's top level: only in their own account)."""
        allowed = (self.reach.personal if mailbox_id is None
                   else self.reach.may(mailbox_id, letters))
        if not allowed:
            raise SetError("forbidden", f"no right to {what}")

    def parent(self, value: Any) -> int | None:
        value = created_id(self.call, value)
        if value is None:
            return None
        number = ids.decode(ids.MAILBOX, value)
        if number is None or number not in self.tree.mailboxes:
            raise SetError("invalidProperties", "parentId names no mailbox", ["parentId"])
        return number

    def check_role(self, role: Any, mailbox: Mailbox | None) -> str | None:
        if role is None:
            return None
        if not isinstance(role, str) or role not in ROLES or role == "inbox":
            raise SetError("invalidProperties", "not a role a mailbox can be given", ["role"])
        holder = next((m for m in self.tree.mailboxes.values() if role_of(m) == role), None)
        if holder is not None and (mailbox is None or holder.id != mailbox.id):
            raise SetError("invalidProperties", "another mailbox has this role", ["role"])
        return role

    def check_sibling(self, parent: int | None, name: str, mailbox: Mailbox | None) -> str:
        full = self.tree.full_name(parent, name)
        other = self.tree.by_name.get(full)
        if other is not None and (mailbox is None or other.id != mailbox.id):
            # RFC 8621 §2: names are unique among siblings.
            raise SetError("invalidProperties", "a sibling has this name", ["name"])
        return full

    async def create(self, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise SetError("invalidProperties", "a Mailbox is an object")
        unknown = [k for k in spec if k not in SETTABLE]
        if unknown:
            raise SetError("invalidProperties", "these properties cannot be set", unknown)
        name = _check_name(spec.get("name"))
        parent = self.parent(spec.get("parentId"))
        self.require(parent, "k", "create a mailbox here")  # mayCreateChild
        role = self.check_role(spec.get("role"), None)
        if role is not None and not self.reach.personal:
            raise SetError("forbidden", "roles are the owner's to give", ["role"])
        sort_order = spec.get("sortOrder", 0)
        if not unsigned(sort_order) or sort_order > MAX_SORT_ORDER:
            raise SetError("invalidProperties", "sortOrder is an UnsignedInt", ["sortOrder"])
        subscribed = spec.get("isSubscribed", False)
        if not isinstance(subscribed, bool):
            raise SetError("invalidProperties", "isSubscribed is a boolean", ["isSubscribed"])
        if subscribed and not self.reach.personal:
            raise SetError("forbidden", "subscriptions in a shared account are the owner's",
                           ["isSubscribed"])
        full = self.check_sibling(parent, name, None)
        if SHARE_WITH in spec and not self.reach.personal:
            raise SetError("forbidden", "no right to share this mailbox", [SHARE_WITH])
        try:
            mailbox = await self.store.mailbox_create(
                self.account, full, special_use_of(role) if role else None)
        except AlreadyExists:
            raise SetError("invalidProperties", "a sibling has this name", ["name"]) from None
        if sort_order:
            mailbox = await self.store.mailbox_update(self.account, mailbox.id,
                                                      sort_order=sort_order)
        if subscribed:
            await self.store.subscribe(self.account, full)
        if SHARE_WITH in spec:
            try:
                share = await self.plan_share(mailbox, {SHARE_WITH: spec[SHARE_WITH]})
            except SetError:
                # Not created after all: nothing else refers to it yet.
                await self.store.mailbox_delete(self.account, full)
                raise
            await sharing.apply_share_with(self.call.node, share)
        await self.refresh()
        mailbox = self.tree.mailboxes.get(mailbox.id, mailbox)
        # RFC 8620 §5.3: the properties "that were not sent by the client,
        # or had a value different from that sent (server-set or default
        # values)".
        whole = mailbox_json(mailbox, self.tree, None, PROPERTIES, self.reach)
        return {prop: value for prop, value in whole.items()
                if prop not in spec or spec[prop] != value}

    async def update(self, mailbox_id: int, patch: Any) -> None:
        mailbox = self.tree.mailboxes.get(mailbox_id)
        if mailbox is None:
            raise SetError("notFound")
        if not isinstance(patch, dict):
            raise SetError("invalidPatch", "a patch is an object")
        share_patch = {k: v for k, v in patch.items() if k.split("/", 1)[0] == SHARE_WITH}
        patch = {k: v for k, v in patch.items() if k not in share_patch}
        bad = [k for k in patch if "/" in k]
        if bad:
            raise SetError("invalidPatch", "Mailbox properties are set whole", bad)
        unknown = [k for k in patch if k not in SETTABLE]
        if unknown:
            raise SetError("invalidProperties", "these properties cannot be set", unknown)
        # shareWith is checked whole before anything changes.
        share = await self.plan_share(mailbox, share_patch) if share_patch else None
        is_inbox = mailbox.name.upper() == "INBOX"
        current_parent = self.tree.parent_id(mailbox)
        name = self.tree.name(mailbox)
        parent = current_parent
        if "name" in patch:
            name = _check_name(patch["name"])
        if "parentId" in patch:
            parent = self.parent(patch["parentId"])
            if parent is not None and (parent == mailbox_id or any(
                    a.id == mailbox_id for a in self.tree.ancestors(
                        self.tree.mailboxes[parent]))):
                raise SetError("invalidProperties", "a mailbox cannot be its own descendant",
                               ["parentId"])
        if "role" in patch and patch["role"] != role_of(mailbox):
            self.check_role(patch["role"], mailbox)
            # The store keeps a special use from creation on only.
            raise SetError("forbidden", "the role of an existing mailbox cannot be changed",
                           ["role"])
        sort_order = patch.get("sortOrder", mailbox.sort_order)
        if not unsigned(sort_order) or sort_order > MAX_SORT_ORDER:
            raise SetError("invalidProperties", "sortOrder is an UnsignedInt", ["sortOrder"])
        subscribed = patch.get("isSubscribed", mailbox.subscribed)
        if not isinstance(subscribed, bool):
            raise SetError("invalidProperties", "isSubscribed is a boolean", ["isSubscribed"])
        renamed = name != self.tree.name(mailbox) or parent != current_parent
        if renamed and is_inbox:
            raise SetError("forbidden", "INBOX cannot be renamed or moved", ["name"])
        if renamed:
            self.require(mailbox_id, "x", "rename this mailbox")  # mayRename
            if parent != current_parent:
                self.require(parent, "k", "move a mailbox there")
        if sort_order != mailbox.sort_order:
            self.require(mailbox_id, "x", "change this mailbox")
        if subscribed != mailbox.subscribed and not self.reach.personal:
            raise SetError("forbidden", "subscriptions in a shared account are the owner's",
                           ["isSubscribed"])
        full = self.check_sibling(parent, name, mailbox) if renamed else mailbox.name
        if renamed or sort_order != mailbox.sort_order:
            try:
                await self.store.mailbox_update(
                    self.account, mailbox_id, name=full if renamed else None,
                    sort_order=sort_order if sort_order != mailbox.sort_order else None)
            except AlreadyExists:
                raise SetError("invalidProperties", "a sibling has this name",
                               ["name"]) from None
            except NotFound:
                raise SetError("notFound") from None
        if subscribed != mailbox.subscribed:
            if subscribed:
                await self.store.subscribe(self.account, full)
            else:
                await self.store.unsubscribe(self.account, full)
        if share is not None:
            await sharing.apply_share_with(self.call.node, share)
        await self.refresh()

    async def plan_share(self, mailbox: Mailbox, patch: dict[str, Any]) -> sharing.ShareChange:
        """The checked ``shareWith`` change (whole or by paths, RFC 9670 §4)."""
        planned = await sharing.plan_share_with(self.call.node, self.reach, mailbox, patch)
        if isinstance(planned, dict):
            raise SetError(planned["type"], planned.get("description"),
                           planned.get("properties"))
        return planned

    async def destroy(self, mailbox_id: int, remove_emails: bool) -> None:
        mailbox = self.tree.mailboxes.get(mailbox_id)
        if mailbox is None:
            raise SetError("notFound")
        if mailbox.name.upper() == "INBOX":
            raise SetError("forbidden", "INBOX cannot be destroyed")
        self.require(mailbox_id, "x", "destroy this mailbox")  # mayDelete
        if self.tree.children(mailbox_id):
            raise SetError("mailboxHasChild")
        if not remove_emails and any(
                visible(m.flags) for m in await self.store.emails(self.account, mailbox_id)):
            raise SetError("mailboxHasEmail")
        if not self.reach.personal:
            self.require(mailbox_id, "te", "remove the emails of this mailbox")
        # A message is in exactly one mailbox: removing the mailbox removes
        # its emails (RFC 8621 §2.5 onDestroyRemoveEmails).
        try:
            await self.store.mailbox_delete(self.account, mailbox.name)
        except NotFound:
            raise SetError("notFound") from None
        await self.refresh()


def _depth(tree: Tree, mailbox_id: int) -> int:
    mailbox = tree.mailboxes.get(mailbox_id)
    return 0 if mailbox is None else len(tree.ancestors(mailbox))


async def mailbox_set(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    reach.check_writable()
    check_objects_in_set(call, args)
    create = args.get("create") or {}
    update = args.get("update") or {}
    destroy = args.get("destroy") or []
    if not isinstance(create, dict) or not isinstance(update, dict):
        raise invalid("create and update are objects or null")
    if not isinstance(destroy, list):
        raise invalid("destroy is a list of ids or null")
    remove_emails = args.get("onDestroyRemoveEmails", False)
    if not isinstance(remove_emails, bool):
        raise invalid("onDestroyRemoveEmails must be a boolean")
    if_in_state = args.get("ifInState")
    if if_in_state is not None and not isinstance(if_in_state, str):
        raise invalid("ifInState must be a string or null")
    store = store_of(call)
    old_state = str(await store.account_state(account))
    if if_in_state is not None and if_in_state != old_state:
        raise MethodError("stateMismatch")
    work = MailboxSet(call, reach, await Tree.read(call, reach))

    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    # A create may name another of this call's creations as its parent
    # ("#creationId"): create in rounds until no more can be.
    pending = dict(create)
    while pending:
        progress = False
        for creation_id, spec in list(pending.items()):
            parent = spec.get("parentId") if isinstance(spec, dict) else None
            if (isinstance(parent, str) and parent.startswith("#")
                    and parent[1:] in pending and parent[1:] != creation_id):
                continue
            del pending[creation_id]
            progress = True
            try:
                made = await work.create(spec)
            except SetError as error:
                not_created[creation_id] = error.json()
                continue
            created[creation_id] = made
            call.created_ids[creation_id] = made["id"]
        if not progress:
            for creation_id in pending:
                not_created[creation_id] = SetError(
                    "invalidProperties", "parentId refers to a creation in a cycle",
                    ["parentId"]).json()
            break

    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    doomed = {ids.decode(ids.MAILBOX, created_id(call, d)) for d in destroy}
    for jmap_id, patch in update.items():
        number = ids.decode(ids.MAILBOX, created_id(call, jmap_id))
        try:
            if number is None:
                raise SetError("notFound")
            if number in doomed:
                # RFC 8620 §5.3: "willDestroy": also destroyed in this call.
                raise SetError("willDestroy")
            await work.update(number, patch)
        except SetError as error:
            not_updated[jmap_id] = error.json()
            continue
        updated[jmap_id] = None

    destroyed: list[str] = []
    not_destroyed: dict[str, Any] = {}
    targets = [(jmap_id, ids.decode(ids.MAILBOX, created_id(call, jmap_id)))
               for jmap_id in destroy]
    # Children before their parents, so destroying both in one call works.
    targets.sort(key=lambda t: -_depth(work.tree, t[1]) if t[1] is not None else 0)
    for jmap_id, number in targets:
        try:
            if not isinstance(jmap_id, str) or number is None:
                raise SetError("notFound")
            await work.destroy(number, remove_emails)
        except SetError as error:
            not_destroyed[jmap_id] = error.json()
            continue
        destroyed.append(jmap_id)

    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": old_state,
        "newState": str(await store.account_state(account)),
        "created": created or None,
        "updated": updated or None,
        "destroyed": destroyed or None,
        "notCreated": not_created or None,
        "notUpdated": not_updated or None,
        "notDestroyed": not_destroyed or None,
    }


METHODS: dict[str, Method] = {
    "Mailbox/get": Method(MAIL, mailbox_get),
    "Mailbox/changes": Method(MAIL, mailbox_changes),
    "Mailbox/query": Method(MAIL, mailbox_query),
    "Mailbox/queryChanges": Method(MAIL, mailbox_query_changes),
    "Mailbox/set": Method(MAIL, mailbox_set),
}
