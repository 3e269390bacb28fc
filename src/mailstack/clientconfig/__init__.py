"""Mail clients set themselves up: Thunderbird autoconfig, Microsoft
Autodiscover (POX) and Apple configuration profiles, each naming this
node's real host name, ports and TLS modes (``documents``), served by the
node's HTTP service (``web``)."""
