"""The webmail's server side: HTML mail made safe to show (``sanitize``) and
remote images fetched only with consent, through the node (``imageproxy``).
The browser app itself is a JMAP client of the node (issue 17)."""
