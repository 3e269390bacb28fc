"""Message authentication: SPF (RFC 7208), DKIM (RFC 6376, RFC 8463 Ed25519,
RFC 8301), DMARC (RFC 7489) and Authentication-Results (RFC 8601).

- ``spf``: check_host() over an ``AuthResolver`` (our own; the openspf suite drives it)
- ``dkim``: signing with the domain's stored keys, verification (dkimpy)
- ``dmarc``: policy discovery, alignment with the Public Suffix List
- ``results``: the Authentication-Results field
- ``check``: the MX's inbound checks and the action the policy asks for
- ``keys``, ``records``: DKIM key pairs and the DNS records a mail domain publishes
- ``dnsapi``: the resolver Protocol and its adapter to mailstack's resolver
"""
