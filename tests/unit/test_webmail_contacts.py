"""Ranking past correspondents for autocomplete (mailstack.webmail.contacts)."""

from __future__ import annotations

from mailstack.webmail.contacts import LIMIT, rank

ME = "bob@example.org"


def mail(sender: str, *to: str, name: str | None = None) -> dict:
    recipients = [{"name": None, "email": t} for t in to]
    return {"from": [{"name": name, "email": sender}], "to": recipients}


def test_matches_name_or_address_most_used_first_without_me() -> None:
    emails = [
        mail("alice@crepes.fr", ME, name="Alice Liddell"),
        mail(ME, "alan@hamburger.edu"),
        mail(ME, "Alice@Crepes.fr"),
        mail("carol@x.test", ME),
    ]
    assert rank(emails, ME, "al") == [
        {"name": "Alice Liddell", "email": "alice@crepes.fr"},
        {"name": None, "email": "alan@hamburger.edu"},
    ]
    assert rank(emails, ME, "LIDDELL")[0]["email"] == "alice@crepes.fr"
    assert rank(emails, ME, "bob") == []  # never oneself
    assert rank(emails, ME, "zzz") == []


def test_bounded_and_odd_input_ignored() -> None:
    emails = [mail(f"u{n}@x.test", ME) for n in range(50)]
    emails.append({"from": [{"email": None}, {"email": "no-at-sign"}], "to": None})
    assert len(rank(emails, ME, "x.test")) == LIMIT
