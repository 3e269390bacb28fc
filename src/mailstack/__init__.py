"""mailstack: Internet mail in one Python program.

SMTP (receiver and submission), POP3, IMAP, an authoritative DNS server and a
caching resolver, and webmail, on one asyncio event loop over one store.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
