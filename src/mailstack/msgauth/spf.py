"""SPF: RFC 7208's check_host() over an ``AuthResolver``.

Our own implementation rather than pyspf: pyspf asks DNS synchronously
through its own module-level lookup function (which would block the event
loop and bypass mailstack's resolver and its timeouts), while this one awaits
the resolver it is given, so tests pass a fake. It is driven by the openspf
RFC 7208 test suite (tests/unit/msgauth/test_spf_suite.py).

``check_host(ip, domain, sender, resolver)`` returns an ``SpfResult``: one
of none, neutral, pass, fail, softfail, temperror, permerror (§2.6), the
mechanism that decided it, and for a fail the explanation (§6.2).
"""

from __future__ import annotations

import ipaddress
import re
import time
import urllib.parse
from dataclasses import dataclass, field

from mailstack.msgauth.dnsapi import AuthResolver, DnsTempError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 7208 §4.6.4: at most 10 mechanisms and modifiers that query DNS, and
# (SHOULD) at most two lookups that return no answer ("void lookups").
LOOKUP_LIMIT = 10
VOID_LIMIT = 2
# §4.6.4: an "mx" or "ptr" evaluation uses at most 10 names.
NAME_LIMIT = 10

QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")

_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(.*)\Z", re.S)
_DIRECTIVE = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9_.\-]*)(.*)\Z", re.S)
# dual-cidr-length (§5.6): "/" 0..32 and/or "//" 0..128, no leading zeros.
_DUAL_CIDR = re.compile(r"(.*?)(?:/(0|[1-9][0-9]*))?(?://(0|[1-9][0-9]*))?\Z", re.S)
_MACRO = re.compile(r"%(?:\{([a-zA-Z])([0-9]*)(r?)([.\-+,/_=]*)\}|(.)|\Z)", re.S)
_TOPLABEL = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?\Z")


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str
    domain: str
    mechanism: str = ""
    explanation: str = ""
    problem: str = ""


class _PermError(Exception):
    """permerror; the message is our words (it reaches Authentication-Results)."""


class _TempError(Exception):
    """temperror; the message is our words (it reaches Authentication-Results)."""


@dataclass(slots=True)
class _Term:
    qualifier: str
    name: str
    domain_spec: str | None = None
    cidr4: int = 32
    cidr6: int = 128
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    text: str = ""


@dataclass(slots=True)
class _Record:
    terms: list[_Term] = field(default_factory=list)
    redirect: str | None = None
    explanation: str | None = None


@dataclass(slots=True)
class _Context:
    ip: IPAddress
    sender: str
    helo: str
    receiver: str
    resolver: AuthResolver
    default_explanation: str
    lookups: int = 0
    voids: int = 0
    validated_name: str | None = None

    def count_lookup(self) -> None:
        self.lookups += 1
        if self.lookups > LOOKUP_LIMIT:
            raise _PermError("more than 10 DNS-querying terms (RFC 7208 §4.6.4)")

    def count_void(self, answers: list[object]) -> None:
        if not answers:
            self.voids += 1
            if self.voids > VOID_LIMIT:
                raise _PermError("more than 2 void lookups (RFC 7208 §4.6.4)")


def valid_domain(domain: str) -> bool:
    """§4.3: a multi-label domain name, no empty label inside, labels of 1..63."""
    name = domain[:-1] if domain.endswith(".") else domain
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253:
        return False
    return all(0 < len(label) <= 63 for label in labels)


def normalize_ip(text: str) -> IPAddress:
    ip = ipaddress.ip_address(text)
    # §5: an IPv4-mapped IPv6 address is evaluated as the IPv4 address.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


async def check_host(
    ip: str,
    domain: str,
    sender: str,
    resolver: AuthResolver,
    *,
    helo: str = "",
    receiver: str = "unknown",
    default_explanation: str = "",
) -> SpfResult:
    """RFC 7208 §4: the SPF result for client ``ip``, ``domain`` and ``sender``."""
    local, at, sender_domain = sender.rpartition("@")
    if not at:
        local, sender_domain = "", sender
    # §4.3: a sender without a local-part is "postmaster@domain".
    sender = f"{local or 'postmaster'}@{sender_domain}"
    context = _Context(
        ip=normalize_ip(ip),
        sender=sender,
        helo=helo,
        receiver=receiver or "unknown",
        resolver=resolver,
        default_explanation=default_explanation,
    )
    domain = domain.rstrip(".") if domain.endswith(".") and not domain.endswith("..") else domain
    if not valid_domain(domain):
        return SpfResult("none", domain, problem="not a valid domain name (RFC 7208 §4.3)")
    try:
        return await _check(context, domain)
    except _PermError as exc:
        return SpfResult("permerror", domain, problem=str(exc))
    except _TempError as exc:
        return SpfResult("temperror", domain, problem=str(exc))


async def check_mail(
    ip: str, mail_from: str, helo: str, resolver: AuthResolver, *, receiver: str = "unknown"
) -> tuple[SpfResult, str]:
    """The SPF result an MX reports, and the identity checked (§2.3, §2.4).

    MAIL FROM's domain, or for the null reverse-path ``postmaster@`` the HELO name.
    """
    if mail_from and "@" in mail_from:
        identity = mail_from
        domain = mail_from.rpartition("@")[2]
    else:
        identity = f"postmaster@{helo}"
        domain = helo
    result = await check_host(ip, domain, identity, resolver, helo=helo, receiver=receiver)
    return result, identity


async def _check(context: _Context, domain: str) -> SpfResult:
    record_text = await _find_record(context, domain)
    if record_text is None:
        return SpfResult("none", domain, problem="no SPF record")
    record = _parse(record_text)
    for term in record.terms:
        if await _matches(context, term, domain):
            result = QUALIFIERS[term.qualifier]
            explanation = ""
            if result == "fail":
                explanation = await _explain(context, record, domain)
            return SpfResult(result, domain, mechanism=term.text, explanation=explanation)
    if record.redirect is not None:
        # §6.1: the result of the redirect target's record, "none" being a permerror.
        context.count_lookup()
        target = await _target(context, record.redirect, domain)
        if target is None or not valid_domain(target):
            raise _PermError("redirect to an invalid domain")
        outcome = await _check(context, target)
        if outcome.result == "none":
            raise _PermError(f"redirect target {target} has no SPF record")
        return outcome
    # §4.7: no match and no redirect gives "neutral".
    return SpfResult("neutral", domain, mechanism="default")


async def _find_record(context: _Context, domain: str) -> str | None:
    """§4.5: the one TXT record that starts with "v=spf1"."""
    try:
        texts = await context.resolver.txt(domain)
    except DnsTempError as exc:
        raise _TempError(exc.problem) from None
    records = [t for t in texts if t.lower() == "v=spf1" or t[:7].lower() == "v=spf1 "]
    if not records:
        return None
    if len(records) > 1:
        raise _PermError(f"{domain} has more than one SPF record (RFC 7208 §4.5)")
    text = records[0]
    if not text.isascii():
        # §3.1: SPF records are 7-bit ASCII.
        raise _PermError("non-ASCII SPF record")
    return text


def _parse(text: str) -> _Record:
    """§4.6, §12: the whole record is checked before anything is evaluated."""
    record = _Record()
    for token in text.split(" ")[1:]:
        if not token:
            continue
        modifier = _MODIFIER.match(token)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            _check_macro_string(value)
            if name in ("redirect", "exp"):
                if getattr(record, "redirect" if name == "redirect" else "explanation"):
                    raise _PermError(f"{name}= appears twice (RFC 7208 §6)")
                _check_domain_spec(value)
                if name == "redirect":
                    record.redirect = value
                else:
                    record.explanation = value
            continue
        record.terms.append(_parse_directive(token))
    return record


def _parse_directive(token: str) -> _Term:
    match = _DIRECTIVE.match(token)
    if not match:
        raise _PermError(f"unknown term {token!r}")
    qualifier = match.group(1) or "+"
    name = match.group(2).lower()
    rest = match.group(3)
    term = _Term(qualifier, name, text=token)
    if name not in MECHANISMS:
        raise _PermError(f"unknown mechanism {name!r}")
    if name == "all":
        if rest:
            raise _PermError(f"bad term {token!r}")
    elif name in ("include", "exists"):
        if not rest.startswith(":") or len(rest) < 2:
            raise _PermError(f"{name} needs a domain")
        term.domain_spec = rest[1:]
        _check_domain_spec(term.domain_spec)
    elif name in ("a", "mx"):
        cidr = _DUAL_CIDR.match(rest)
        assert cidr is not None  # the pattern matches every string
        spec, cidr4, cidr6 = cidr.groups()
        if cidr4 is not None:
            term.cidr4 = int(cidr4)
            if term.cidr4 > 32:
                raise _PermError(f"bad IPv4 prefix in {token!r}")
        if cidr6 is not None:
            term.cidr6 = int(cidr6)
            if term.cidr6 > 128:
                raise _PermError(f"bad IPv6 prefix in {token!r}")
        if spec:
            if not spec.startswith(":") or len(spec) < 2:
                raise _PermError(f"bad term {token!r}")
            term.domain_spec = spec[1:]
            _check_domain_spec(term.domain_spec)
    elif name == "ptr":
        if rest:
            if not rest.startswith(":") or len(rest) < 2:
                raise _PermError(f"bad term {token!r}")
            term.domain_spec = rest[1:]
            _check_domain_spec(term.domain_spec)
    else:
        term.network = _parse_network(name, rest, token)
    return term


def _parse_network(
    name: str, rest: str, token: str
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not rest.startswith(":"):
        raise _PermError(f"bad term {token!r}")
    address, slash, prefix = rest[1:].partition("/")
    limit = 32 if name == "ip4" else 128
    if slash and not re.fullmatch(r"0|[1-9][0-9]*", prefix):
        raise _PermError(f"bad prefix in {token!r}")
    length = int(prefix) if slash else limit
    if length > limit:
        raise _PermError(f"bad prefix in {token!r}")
    try:
        if name == "ip4":
            if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", address):
                raise ValueError(address)
            ip: IPAddress = ipaddress.IPv4Address(address)
        else:
            ip = ipaddress.IPv6Address(address)
    except ValueError:
        raise _PermError(f"bad address in {token!r}") from None
    return ipaddress.ip_network(f"{ip}/{length}", strict=False)


def _check_macro_string(text: str, *, explanation: bool = False) -> None:
    position = 0
    while True:
        percent = text.find("%", position)
        literal = text[position : len(text) if percent < 0 else percent]
        for char in literal:
            if not (0x21 <= ord(char) <= 0x7E or (explanation and char == " ")):
                raise _PermError("bad character in a macro string (RFC 7208 §7.1)")
        if percent < 0:
            return
        match = _MACRO.match(text, percent)
        if match is None or match.group(0) == "%":
            raise _PermError("bad macro (RFC 7208 §7.1)")
        single = match.group(5)
        if single is not None and single not in "%_-":
            raise _PermError("bad macro (RFC 7208 §7.1)")
        letter = match.group(1)
        if letter is not None:
            allowed = "slodiphv" + ("crt" if explanation else "")
            if letter.lower() not in allowed:
                raise _PermError(f"macro letter {letter!r} not allowed here (RFC 7208 §7.2)")
            if match.group(2) and int(match.group(2)) == 0:
                raise _PermError("zero macro transformer (RFC 7208 §7.3)")
        position = match.end()


def _check_domain_spec(spec: str) -> None:
    """§7.1: domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro."""
    _check_macro_string(spec)
    if spec.endswith("}"):
        return
    name = spec[:-1] if spec.endswith(".") else spec
    label = name.rpartition(".")[2]
    if "." not in name or not _TOPLABEL.match(label):
        raise _PermError(f"bad domain {spec!r} (RFC 7208 §7.1 domain-end)")


async def _expand(context: _Context, text: str, domain: str, *, explanation: bool = False) -> str:
    """§7.3: macro expansion."""
    out: list[str] = []
    position = 0
    while True:
        percent = text.find("%", position)
        if percent < 0:
            out.append(text[position:])
            return "".join(out)
        out.append(text[position:percent])
        match = _MACRO.match(text, percent)
        if match is None:
            raise _PermError("bad macro")
        single = match.group(5)
        if single is not None:
            out.append({"%": "%", "_": " ", "-": "%20"}[single])
        elif match.group(1) is not None:
            letter, digits, reverse, delimiters = match.groups()[:4]
            value = await _macro_value(context, letter.lower(), domain)
            parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
            if reverse:
                parts.reverse()
            if digits:
                count = int(digits)
                if count == 0:
                    raise _PermError("zero macro transformer")
                parts = parts[-count:]
            expanded = ".".join(parts)
            if letter.isupper():
                expanded = urllib.parse.quote(expanded, safe="-._~")
            out.append(expanded)
        position = match.end()


async def _macro_value(context: _Context, letter: str, domain: str) -> str:
    ip = context.ip
    if letter == "s":
        return context.sender
    if letter == "l":
        return context.sender.rpartition("@")[0]
    if letter == "o":
        return context.sender.rpartition("@")[2]
    if letter == "d":
        return domain
    if letter == "i":
        if isinstance(ip, ipaddress.IPv4Address):
            return str(ip)
        return ".".join(ip.exploded.replace(":", ""))
    if letter == "c":
        return str(ip)
    if letter == "p":
        return await _validated_name(context, domain)
    if letter == "v":
        return "in-addr" if isinstance(ip, ipaddress.IPv4Address) else "ip6"
    if letter == "h":
        return context.helo
    if letter == "r":
        return context.receiver
    if letter == "t":
        return str(int(time.time()))
    raise _PermError(f"unknown macro letter {letter!r}")


def _truncate(name: str) -> str:
    # §7.3: a name longer than 253 characters loses labels on the left.
    name = name.rstrip(".") if name.endswith(".") else name
    while len(name) > 253 and "." in name:
        name = name.partition(".")[2]
    return name


async def _target(context: _Context, spec: str | None, domain: str) -> str | None:
    if spec is None:
        return domain
    name = _truncate(await _expand(context, spec, domain))
    return name if valid_domain(name) else None


async def _addresses(context: _Context, name: str) -> list[IPAddress]:
    resolver = context.resolver
    if isinstance(context.ip, ipaddress.IPv4Address):
        texts = await resolver.a(name)
    else:
        texts = await resolver.aaaa(name)
    addresses: list[IPAddress] = []
    for text in texts:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            continue
    return addresses


def _in_cidr(context: _Context, address: IPAddress, term: _Term) -> bool:
    if address.version != context.ip.version:
        return False
    prefix = term.cidr4 if address.version == 4 else term.cidr6
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return context.ip in network


async def _matches(context: _Context, term: _Term, domain: str) -> bool:
    name = term.name
    if name == "all":
        return True
    if name in ("ip4", "ip6"):
        assert term.network is not None
        return context.ip.version == term.network.version and context.ip in term.network
    context.count_lookup()
    target = await _target(context, term.domain_spec, domain)
    try:
        if name == "include":
            return await _include(context, target)
        if target is None:
            return False
        if name == "a":
            addresses = await _addresses(context, target)
            context.count_void(list(addresses))
            return any(_in_cidr(context, address, term) for address in addresses)
        if name == "mx":
            return await _mx(context, target, term)
        if name == "ptr":
            validated = await _validated_names(context)
            return any(n == target.lower() or n.endswith("." + target.lower()) for n in validated)
        # exists (§5.7): an A query whatever the client's address family.
        found = await context.resolver.a(target)
        context.count_void(list(found))
        return bool(found)
    except DnsTempError as exc:
        raise _TempError(exc.problem) from None


async def _include(context: _Context, target: str | None) -> bool:
    if target is None:
        raise _PermError("include of an invalid domain")
    # §5.2: the include table.
    outcome = await _check(context, target)
    if outcome.result == "pass":
        return True
    if outcome.result in ("fail", "softfail", "neutral"):
        return False
    if outcome.result == "temperror":
        raise _TempError(outcome.problem)
    raise _PermError(f"include:{target} gave {outcome.result}")


async def _mx(context: _Context, target: str, term: _Term) -> bool:
    exchanges = await context.resolver.mx(target)
    context.count_void(list(exchanges))
    if len(exchanges) > NAME_LIMIT:
        raise _PermError("more than 10 MX names (RFC 7208 §4.6.4)")
    for _, exchange in sorted(exchanges):
        if not exchange:
            continue
        for address in await _addresses(context, exchange):
            if _in_cidr(context, address, term):
                return True
    return False


async def _forward_confirmed(context: _Context, names: list[str]) -> list[str]:
    """The first ten of names whose forward lookup gives the client's address back."""
    confirmed = []
    for name in names[:NAME_LIMIT]:
        try:
            addresses = await _addresses(context, name)
        except DnsTempError:
            continue
        if context.ip in addresses:
            confirmed.append(name.rstrip("."))
    return confirmed


async def _validated_names(context: _Context) -> list[str]:
    """§5.5: PTR names whose forward lookup gives the client's address back."""
    try:
        names = await context.resolver.ptr(str(context.ip))
    except DnsTempError:
        return []
    context.count_void(list(names))
    return [name.lower() for name in await _forward_confirmed(context, list(names))]


async def _validated_name(context: _Context, domain: str) -> str:
    """§7.3 "p": a validated name, preferring the domain itself or a subdomain."""
    if context.validated_name is None:
        try:
            names = await context.resolver.ptr(str(context.ip))
        except DnsTempError:
            names = []
        chosen = "unknown"
        candidates = await _forward_confirmed(context, list(names))
        lowered = domain.lower()
        for name in candidates:
            if name.lower() == lowered or name.lower().endswith("." + lowered):
                chosen = name
                break
        else:
            if candidates:
                chosen = candidates[0]
        context.validated_name = chosen
    return context.validated_name


async def _explain(context: _Context, record: _Record, domain: str) -> str:
    """§6.2: the exp= text, or the default when anything about it goes wrong."""
    if record.explanation is None:
        return context.default_explanation
    try:
        target = await _target(context, record.explanation, domain)
        if target is None:
            return context.default_explanation
        texts = await context.resolver.txt(target)
        if len(texts) != 1 or not texts[0].isascii():
            return context.default_explanation
        _check_macro_string(texts[0], explanation=True)
        return await _expand(context, texts[0], domain, explanation=True)
    except (_PermError, DnsTempError):
        return context.default_explanation
