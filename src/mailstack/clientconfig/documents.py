"""The documents mail clients read to set an account up, built from what the
node actually listens on.

* Thunderbird autoconfig (``config-v1.1.xml``, the "clientConfig" format
  Thunderbird's ISPDB uses);
* Microsoft Autodiscover, the POX "outlook" response schema
  (``autodiscover.xml``), which Outlook and many mobile clients ask;
* an Apple configuration profile (``.mobileconfig``, a property list with a
  ``com.apple.mail.managed`` payload) for iOS and macOS Mail.

Each names the node's host name (``[smtp] hostname``, else ``[node]
hostname``) and, for every listener that runs, its port and TLS mode:
implicit TLS (IMAPS, POP3S, submissions) is preferred over STARTTLS (RFC
8314 §3). Plain-text ports without STARTTLS are never offered.
"""

from __future__ import annotations

import plistlib
import uuid
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

# (listener, protocol, TLS mode) in order of preference per protocol.
LISTENERS = (
    ("imaps", "imap", "SSL"),
    ("imap", "imap", "STARTTLS"),
    ("pop3s", "pop3", "SSL"),
    ("pop3", "pop3", "STARTTLS"),
    ("submissions", "smtp", "SSL"),
    ("submission", "smtp", "STARTTLS"),
)


@dataclass(frozen=True, slots=True)
class Server:
    protocol: str  # imap, pop3, smtp
    host: str
    port: int
    tls: str  # SSL (implicit) or STARTTLS


def servers(host: str, ports: dict[str, int]) -> list[Server]:
    """The node's mail servers, most preferred first per protocol;
    ``ports`` maps listener names to the ports they listen on."""
    return [
        Server(protocol, host, ports[name], tls)
        for name, protocol, tls in LISTENERS
        if ports.get(name)
    ]


def _first(found: list[Server], protocol: str) -> Server | None:
    return next((s for s in found if s.protocol == protocol), None)


def thunderbird(domain: str, found: list[Server]) -> bytes:
    """config-v1.1.xml for a domain (every incoming server, most preferred first)."""
    d = escape(domain)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        f'  <emailProvider id="{d}">',
        f"    <domain>{d}</domain>",
        f"    <displayName>{d} mail</displayName>",
        f"    <displayShortName>{d}</displayShortName>",
    ]
    for server in found:
        tag = "outgoingServer" if server.protocol == "smtp" else "incomingServer"
        lines += [
            f'    <{tag} type="{server.protocol}">',
            f"      <hostname>{escape(server.host)}</hostname>",
            f"      <port>{server.port}</port>",
            f"      <socketType>{server.tls}</socketType>",
            "      <username>%EMAILADDRESS%</username>",
            "      <authentication>password-cleartext</authentication>",
            f"    </{tag}>",
        ]
    lines += ["  </emailProvider>", "</clientConfig>", ""]
    return "\n".join(lines).encode()


AUTODISCOVER_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


def autodiscover(address: str, found: list[Server]) -> bytes:
    """The POX Autodiscover response for an address: its IMAP (else POP3)
    and SMTP servers; ``SSL on`` is implicit TLS, ``Encryption TLS`` is
    STARTTLS."""
    protocols = []
    for server in (_first(found, "imap") or _first(found, "pop3"), _first(found, "smtp")):
        if server is None:
            continue
        tls = (
            "<SSL>on</SSL>" if server.tls == "SSL" else "<SSL>off</SSL><Encryption>TLS</Encryption>"
        )
        protocols.append(
            "      <Protocol>"
            f"<Type>{server.protocol.upper()}</Type>"
            f"<Server>{escape(server.host)}</Server>"
            f"<Port>{server.port}</Port>"
            "<DomainRequired>off</DomainRequired>"
            f"<LoginName>{escape(address)}</LoginName>"
            "<SPA>off</SPA>"
            f"{tls}"
            "<AuthRequired>on</AuthRequired>"
            "</Protocol>"
        )
    body = "\n".join(protocols)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<Autodiscover xmlns="{AUTODISCOVER_RESPONSE}">\n'
        f'  <Response xmlns="{OUTLOOK_RESPONSE}">\n'
        "    <Account>\n"
        "      <AccountType>email</AccountType>\n"
        "      <Action>settings</Action>\n"
        f"{body}\n"
        "    </Account>\n"
        "  </Response>\n"
        "</Autodiscover>\n"
    ).encode()


def mobileconfig(address: str, name: str, host: str, found: list[Server]) -> bytes:
    """An Apple configuration profile with one mail account (no password in
    it: the device asks)."""
    incoming = _first(found, "imap") or _first(found, "pop3")
    outgoing = _first(found, "smtp")
    if incoming is None or outgoing is None:
        raise ValueError("the node has no incoming or no outgoing mail listener")
    reverse = ".".join(reversed(host.split(".")))
    account: dict[str, Any] = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{reverse}.mailstack.mail.{address}",
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailstack-mail:{address}")).upper(),
        "PayloadDisplayName": f"{address} mail",
        "EmailAccountDescription": address,
        "EmailAccountName": name or address,
        "EmailAccountType": "EmailTypeIMAP" if incoming.protocol == "imap" else "EmailTypePOP",
        "EmailAddress": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": incoming.host,
        "IncomingMailServerPortNumber": incoming.port,
        "IncomingMailServerUseSSL": incoming.tls == "SSL",
        "IncomingMailServerUsername": address,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": outgoing.host,
        "OutgoingMailServerPortNumber": outgoing.port,
        "OutgoingMailServerUseSSL": outgoing.tls == "SSL",
        "OutgoingMailServerUsername": address,
        "OutgoingPasswordSameAsIncomingPassword": True,
        "PreventMove": False,
        "SMIMEEnabled": False,
    }
    profile: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{reverse}.mailstack.{address}",
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailstack:{address}")).upper(),
        "PayloadDisplayName": f"Mail for {address}",
        "PayloadDescription": f"Sets up {address} on {host}",
        "PayloadOrganization": host,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [account],
    }
    return plistlib.dumps(profile)
