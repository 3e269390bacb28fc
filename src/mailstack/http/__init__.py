"""The node's HTTP service (RFC 9110, RFC 9112 HTTP/1.1 with keep-alive) on
aiohttp, run by the `http` listener (plain, for loopback) and the `https`
listener (implicit TLS with the node's certificate).

* ``service``: the listeners, the routes other packages provide
  (``ROUTES``), limits and timeouts, the trace of request and response heads,
  errors as RFC 7807 problem details;
* ``auth``: one authentication path for every route, through the node's
  authenticator: HTTP Basic (RFC 7617) and bearer tokens (RFC 6750);
* ``config``: the ``[http]`` table.
"""
