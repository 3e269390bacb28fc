"""The lab: the lectures' small Internet on loopback, from one command.

topology    the hosts (root, TLD, authoritative, resolver, mail, client)
            read from TOML; the zones they serve as master files, with
            delegations and glue (RFC 1034 §4.2.1); default.toml is the
            lectures' world
hosts       one data directory, config and `mailstack serve` process per
            host on its own 127.0.0.x address; the state `lab status` and
            `lab down` read
scenarios   `lab run NAME`: the lectures' stories with their transcripts
            and checked outcomes
view        the live view: the hosts' trace events drawn in a browser as a
            sequence diagram, as they happen (aiohttp, Server-Sent Events)
sockets     the lectures' first programs: the uppercase UDP and TCP server
            and client (`mailstack lab uppercase-server|uppercase-client`)
cli         `mailstack lab up|status|down|run|view` and the socket apps
"""
