"""What several protocols share: CRLF line framing with limits, the S:/C: trace,
TLS contexts and certificates, SASL, the TCP line-server base, and the
authenticator every password login goes through (`auth`)."""
