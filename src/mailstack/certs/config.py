"""The `[acme]` table: certificates obtained and renewed by ACME (RFC 8555)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailstack.schema import option

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"

Challenge = Literal["dns-01", "http-01", "tls-alpn-01"]


@dataclass(frozen=True, slots=True)
class AcmeConfig:
    enabled: bool = option(
        False,
        "obtain and renew certificates by themselves, for the host name and the mail., "
        "autoconfig. and mta-sts. names of every domain",
    )
    directory: str = option(LETS_ENCRYPT, "the ACME server's directory URL")
    staging: bool = option(
        False, "use Let's Encrypt's staging server (untrusted certificates, high rate limits)"
    )
    ca_file: str = option(
        "",
        "a PEM bundle to trust for the ACME server's own HTTPS (a test CA such as "
        "Pebble's); empty: the system's",
    )
    email: str = option("", "the contact address of the ACME account; empty: none")
    challenge: Challenge = option(
        "dns-01",
        "how names are proven: dns-01 (a TXT record in the zones this node serves), "
        "http-01 (the http listener on port 80) or tls-alpn-01 (a TLS listener on port 443)",
    )
    renew_days: int = option(
        30,
        "renew a certificate this many days before it expires (or in the ARI window)",
        minimum=1,
        maximum=365,
    )
    check_interval: float = option(
        3600.0, "seconds between two checks for certificates due", minimum=1.0
    )
    timeout: float = option(
        120.0, "seconds an order may take, challenges and finalization included", minimum=5.0
    )

    def directory_url(self) -> str:
        if self.staging and self.directory == LETS_ENCRYPT:
            return LETS_ENCRYPT_STAGING
        return self.directory
