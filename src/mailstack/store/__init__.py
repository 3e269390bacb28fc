"""The only package that touches durable data.

`base.py` is the Store protocol and its models; `sqlite.py` the embedded
backend (SQLite in WAL mode with group commit); `zones.py` the DNS zone part.
"""
