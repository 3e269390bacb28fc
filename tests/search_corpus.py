"""A generated corpus for the full-text index's tests (contract and IMAP):
unicode, case, folded and RFC 2047 encoded headers, attachments."""

from __future__ import annotations

import random

WORDS = [
    "lunch", "Crêpes", "STRASSE", "Straße", "naïve", "Ωmega", "日本語テキスト", "hamburger",
    "ﬁle", "quarterly", "report", "İstanbul", "ǅemal", "zebra", "x-ray", "ab",
]  # fmt: skip
ATTACHMENT = (
    "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "{body}\r\n--b1\r\nContent-Type: application/pdf\r\n"
    'Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9?=.pdf"\r\n'
    "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKcGRmIGJ5dGVzIGhlcmU=\r\n--b1--\r\n"
)
NEEDLES = [
    "lunch", "LUNCH", "crêpes", "strasse", "STRAßE", "naïve", "ωmega", "日本語", "ｆｉle", "file",
    "quarterly report", "hamburger.edu", "subject: ", "delivered-to: bob", "résumé",
    "=?utf-8", "x-ray", "zebra lunch", "istanbul", "i̇stanbul", "ǆemal", "not-there-at-all",
    "pdf", "jvber", "ab", "a", "", "line\nbreak", "from: alice",
]  # fmt: skip


def message(rng: random.Random, n: int) -> bytes:
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
    subject_words = " ".join(rng.choice(WORDS) for _ in range(3))
    if n % 3 == 0:
        encoded = subject_words.encode("utf-8").hex()
        subject = "=?utf-8?q?" + "".join(
            f"={encoded[i : i + 2]}" for i in range(0, len(encoded), 2)
        )
        subject += "?="
    elif n % 3 == 1:
        subject = subject_words.replace(" ", "\r\n ", 1)  # folded
    else:
        subject = subject_words
    head = (
        f"From: Alice {rng.choice(WORDS)} <alice@crepes.fr>\r\nTo: bob@hamburger.edu\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{n}@crepes.fr>\r\nMIME-Version: 1.0\r\n"
    )
    body = " ".join(words)
    if n % 4 == 0:
        head += 'Content-Type: multipart/mixed; boundary="b1"\r\n'
        text = ATTACHMENT.format(body=body)
    else:
        head += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        text = body + "\r\n"
    return (head + "\r\n" + text).encode("utf-8")
