"""The node's certificates: the ones it keeps (``files``), chosen by SNI for
every TLS listener (``mailstack.common.tls``), made self-signed, imported,
or obtained by ACME.
"""
