"""The IMAP server: RFC 3501 IMAP4rev1 and RFC 9051 IMAP4rev2 (after ENABLE
IMAP4rev2), and the extensions real clients use.

    proto/        no I/O: command framing with NeedLiteral (lexer), tokens,
                  the command grammar (parser, commands), the response writer,
                  the state table, modified UTF-7, IMAP URLs (imapurl)
    session.py    one session: state checks in one place, dispatch to the
                  command families, untagged updates of the selected mailbox
    auth.py       CAPABILITY NOOP LOGOUT STARTTLS LOGIN AUTHENTICATE ID ENABLE
                  COMPRESS
    mailboxes.py  SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE
                  LIST LSUB STATUS NAMESPACE
    append.py     APPEND (MULTIAPPEND, APPENDUID, CATENATE, UTF8)
    urlauth.py    GENURLAUTH RESETKEY URLFETCH (URLAUTH)
    urls.py       what an IMAP URL names, URLAUTH keys and verification
                  (CATENATE, URLFETCH and the submission server's BURL)
    fetch.py      FETCH, from the parse stored at delivery
    search.py     SEARCH (ESEARCH and PARTIAL results)
    sort.py       SORT and THREAD (ESORT, DISPLAY)
    matching.py   which messages match a search program, and SORT's order
    ordering.py   no I/O: base subjects, sort keys, the threading algorithms
    contexts.py   results kept up to date (CONTEXT=SEARCH/SORT), CANCELUPDATE
    messages.py   CHECK CLOSE UNSELECT EXPUNGE STORE COPY MOVE
    idle.py       IDLE
    notify.py     NOTIFY: the account's changes told as they happen
    quota.py      GETQUOTA GETQUOTAROOT (QUOTA, STORAGE from the store's quotas)
    metadata.py   GETMETADATA SETMETADATA (METADATA, METADATA-SERVER)
    acl.py        SETACL DELETEACL GETACL LISTRIGHTS MYRIGHTS, the other users'
                  namespace, and the rights each mailbox command needs
    cli.py        `mailstack share` (the same store operation as SETACL)
    selected.py   the selected mailbox as a session sees it
    cache.py      per-node caches of parsed messages, message metadata and
                  sort keys, and
                  what one session expunged that another may still FETCH
    config.py     the [imap] table
    shared.py     what the node's imap and imaps listeners share
    server.py     the imap/imaps listeners (ImapService)

Standards: RFC 3501, 9051; 2177 IDLE, 2180 multi-access, 2342 NAMESPACE, 2971 ID,
3348 CHILDREN, 3502 MULTIAPPEND, 3516 BINARY, 4467 URLAUTH, 4469 CATENATE,
4978 COMPRESS, 5092 IMAP URLs,
5182 SEARCHRES, 6855 UTF8=ACCEPT, 8474 OBJECTID, 3691 UNSELECT, 4315 UIDPLUS, 4731
ESEARCH, 4959 SASL-IR, 5161 ENABLE, 5256 SORT/THREAD, 5258 LIST-EXTENDED, 5267
ESORT/CONTEXT, 5530 response codes, 5819 LIST-STATUS, 5957 SORT=DISPLAY, 6154
SPECIAL-USE, 6851 MOVE, 7162 CONDSTORE/QRESYNC, 7888 LITERAL+, 7889
APPENDLIMIT, 8438 STATUS=SIZE, 8970 PREVIEW, 9208 QUOTA, 9394 PARTIAL, 4314 ACL,
8440 LIST-MYRIGHTS, 5465 NOTIFY, 5464 METADATA, 5032 WITHIN, 8514 SAVEDATE.
docs/rfc-status.md says how fully.
"""
