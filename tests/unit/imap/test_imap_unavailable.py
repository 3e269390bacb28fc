"""A store that cannot be reached (a shared PostgreSQL restarting) gets the
temporary RFC 5530 answer, NO [UNAVAILABLE], never [CANNOT] or a crash; the
session goes on and works again once the store is back."""

from transcript import PASSWORD, USER, Client

from mailstack.errors import StoreUnavailable


async def test_an_unreachable_store_is_no_unavailable_and_the_session_goes_on(
    store, monkeypatch
):
    await store.domain_add("hamburger.edu")
    await store.account_add(USER, PASSWORD)
    c = Client(store)
    await c.login()
    real = store.mailbox_status

    async def gone(*args, **kwargs):
        raise StoreUnavailable("the PostgreSQL store is unavailable: connection refused")

    monkeypatch.setattr(store, "mailbox_status", gone)
    await c.transcript(
        """
        C: a1 STATUS INBOX (MESSAGES)
        S: a1 NO [UNAVAILABLE] The store is unavailable, try again
        """
    )
    monkeypatch.setattr(store, "mailbox_status", real)
    await c.transcript(
        """
        C: a2 STATUS INBOX (MESSAGES)
        S: * STATUS "INBOX" (MESSAGES 0)
        S: a2 OK STATUS completed
        """
    )
