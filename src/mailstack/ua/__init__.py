"""The user agent: compose, send and read mail from the command line.

The lectures' third part of Internet mail beside the servers and SMTP:
`mailstack send` plays Alice, `mailstack read` plays Bob.

    compose     a message built with the standard `email` package: RFC 5322
                (Date, Message-ID), MIME RFC 2045-2049, RFC 2047 encoded words,
                RFC 2231 filenames; 7bit, quoted-printable or base64 per part
    discover    where to send: RFC 6186 SRV records (RFC 8314 §5.1 prefers
                implicit TLS), the MX of RFC 5321 §5.1, through mailstack's
                resolver; the node's own DNS listener
    wire        smtplib, imaplib and poplib with the lectures' C:/S: trace
                (credentials elided), connecting where discovery said
    submit      submission (RFC 6409: STARTTLS or implicit TLS, AUTH) and
                `--direct` delivery to the recipients' MX (RFC 5321)
    imapread    reading over IMAP (RFC 3501): folders, server-side SEARCH
    pop3read    POP3 (RFC 1939) download-and-delete and download-and-keep
    maildir     the local Maildir POP3 downloads into, fsynced, with UIDLs
    view        a message shown: headers, text, attachments; tables, JSON
    accounts    ~/.config/mailstack/accounts.toml and how passwords are got
    cli         `mailstack send`, `mailstack read`
"""
