"""IMAP protocol logic without I/O (RFC 3501 §2.2, §4, §7, §9).

Feed bytes to ``lexer.CommandReader`` (``receive_data``, ``b""`` at end of
file) and ask for the next event: ``NeedData``, ``NeedLiteral(size)`` (send a
``+`` continuation), ``RawCommand``, ``FramingError`` or ``Hangup`` (end of
file, autologout). ``parser.parse_command`` turns a raw
command into a ``commands.Command``; ``response`` encodes replies;
``states`` is the table of which command each state allows; ``mutf7``
converts mailbox names.
"""
