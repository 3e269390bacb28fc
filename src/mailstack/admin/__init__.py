"""Administering a node: the admin operations (``ops``), which the command
line and the admin JSON endpoints (``web``, under ``/admin/api/``) share, and
the admin pages (``static/``) for accounts with the admin role."""
