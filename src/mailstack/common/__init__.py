"""What several protocols share: CRLF line framing with limits, the S:/C: trace,
TLS contexts and certificates, SASL, the TCP line-server base, and RFC 1982
serial number arithmetic (`serial`, for DNS zone serials)."""
