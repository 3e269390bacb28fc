"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, STATUS DELETED/DELETED-STORAGE,
OVERQUOTA on APPEND; SETQUOTA not offered."""

from transcript import PASSWORD, USER, Client, message, setup_account

from support import append


async def test_quota_root_usage_and_limit(store):
    await store.domain_add("hamburger.edu")
    account = await store.account_add(USER, PASSWORD, quota=10 * 1024)
    inbox = await store.mailbox_get(account.id, "INBOX")
    await append(store, inbox.id, message(1, body="x" * 2000))
    used = (await store.account_get(USER)).used
    assert used > 2000
    kib = (used + 1023) // 1024
    c = Client(store)
    await c.login()
    got = await c.send("a0 CAPABILITY")
    assert " QUOTA QUOTA=RES-STORAGE " in got[0] and "QUOTASET" not in got[0]
    await c.transcript(
        f"""
        C: a1 GETQUOTAROOT INBOX
        S: * QUOTAROOT "INBOX" ""
        S: * QUOTA "" (STORAGE {kib} 10)
        S: a1 OK GETQUOTAROOT completed
        C: a2 GETQUOTA ""
        S: * QUOTA "" (STORAGE {kib} 10)
        S: a2 OK GETQUOTA completed
        C: a3 GETQUOTA "other"
        S: a3 NO [NONEXISTENT] No such quota root
        C: a4 GETQUOTAROOT Nowhere
        S: a4 NO [NONEXISTENT] No such mailbox
        C: a5 SETQUOTA "" (STORAGE 20)
        S: a5 BAD Unknown command
        C: a6 APPEND INBOX {{9000+}}\\r\\n{"y" * 9000}
        S: a6 NO [OVERQUOTA] Over quota
        C: a7 GETQUOTA
        S: a7 BAD ...
        """
    )


async def test_no_quota_root_without_a_limit(store):
    await setup_account(store, 1)
    c = Client(store)
    await c.login()
    await c.transcript(
        """
        C: a1 GETQUOTAROOT INBOX
        S: * QUOTAROOT "INBOX"
        S: a1 OK GETQUOTAROOT completed
        C: a2 GETQUOTA ""
        S: a2 NO [NONEXISTENT] No such quota root
        """
    )


async def test_status_deleted(store):
    account, inbox = await setup_account(store, 3)
    sizes = {m.uid: m.size for m in await store.messages(inbox.id)}
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    await c.send("s2 STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    kib = (sizes[1] + sizes[2] + 1023) // 1024
    await c.transcript(
        f"""
        C: a1 STATUS INBOX (DELETED DELETED-STORAGE MESSAGES)
        S: * STATUS "INBOX" (DELETED 2 DELETED-STORAGE {kib} MESSAGES 3)
        S: a1 OK STATUS completed
        C: a2 STATUS Trash (DELETED)
        S: * STATUS "Trash" (DELETED 0)
        S: a2 OK STATUS completed
        C: a3 STATUS INBOX (DELETED)
        S: * STATUS "INBOX" (DELETED 2)
        S: a3 OK STATUS completed
        """
    )
    # RFC 5819 LIST-STATUS gives the same values.
    got = await c.send('a4 LIST "" "INBOX" RETURN (STATUS (DELETED DELETED-STORAGE MESSAGES))')
    assert got[1] == f'* STATUS "INBOX" (DELETED 2 DELETED-STORAGE {kib} MESSAGES 3)', got
