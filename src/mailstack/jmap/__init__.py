"""JMAP (RFC 8620 core, RFC 8621 mail, RFC 8887 WebSocket, RFC 9670
sharing) served by the node's HTTP service.

* ``method``: what every method handler gets (``Call``) and raises
  (``MethodError``), and how a module offers its methods;
* ``ids``: the JMAP ids of store objects (accounts, mailboxes, emails,
  threads, blobs, records);
* ``api``: a Request object in, a Response object out: ``using``, method
  calls in order, result references, creation ids, request-level errors
  (RFC 7807);
* one module per data type (``mailbox``, ``thread``, ``email``, ...), each
  with a ``METHODS`` table.

Nothing here knows HTTP: the web layer (``mailstack.http``) authenticates,
reads the body and hands the parsed request to ``api``.
"""
