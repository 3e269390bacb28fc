"""What several protocols share: CRLF line framing with limits, the S:/C: trace,
TLS contexts and certificates, SASL, the TCP service base (`server`) with its
per-client session caps (`clients`: client addresses and network prefixes), the one
session driver that runs SMTP, POP3 and IMAP sessions over it (`driver`), the
loopback guard on outbound connections (`netguard`), and the authenticator
every password login goes through (`auth`)."""
