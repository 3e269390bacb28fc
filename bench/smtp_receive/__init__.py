"""SMTP receive benchmark: mailstack (durable) vs aiosmtpd; see run.py."""
