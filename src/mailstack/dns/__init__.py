"""DNS: the authoritative server, the caching resolver and zone management.

What this package implements, and where:

- ``zone``        zone data as immutable snapshots, loaded from RFC 1035 master
                  files (§5) or built from the store; diffs for IXFR (RFC 1995)
- ``authority``   the authoritative answer algorithm (RFC 1034 §4.3.2, RFC 2181,
                  RFC 2308 negative answers, RFC 4592 wildcards, RFC 8482 ANY),
                  with precomputed wire answers for the hot path
- ``catalog``     the zones served, their IXFR journals and who may change
                  them; tells NOTIFY senders (RFC 1996 §4.5) that a serial moved
- ``managed``     between the store's managed zones and served ``Zone`` snapshots
- ``proto``       from a query's bytes to a reply's bytes (RFC 1035 §4.1, RFC
                  6891 EDNS0, RFC 8945 TSIG), or to the work a reply needs; no I/O
- ``transfer``    AXFR (RFC 5936) and IXFR (RFC 1995) replies, NOTIFY (RFC 1996)
- ``update``      dynamic UPDATE (RFC 2136) applied all or nothing, without I/O
- ``resolution``  the iterative resolution algorithm as a state machine without
                  I/O (RFC 1034 §5.3.3, RFC 9156 QNAME minimisation, RFC 5452)
- ``cache``       the resolver's cache: positive and negative (RFC 2308) answers,
                  referrals and glue, with bailiwick-checked data only
- ``resolver``    ``Resolver``: iterative from root hints or forwarding; the I/O
- ``server``      the UDP and TCP (RFC 7766) sockets, rate limit, connection bounds
- ``service``     ``DnsService``: the node's DNS server built from ``[dns]``
- ``config``      the ``[dns]`` table of mailstack.toml
- ``cli``         ``mailstack dns query|zone|record``

dnspython provides the wire format, names, rdata, master files and TSIG; the
server and resolver logic are ours.
"""
