"""JMAP sending end to end with a client we did not write (jmapc, over
https): Identity, a draft made with Email/set, EmailSubmission to a local
and a remote recipient (aiosmtpd on 127.0.0.6, found by a fake MX) with the
draft moved to Sent by onSuccessUpdateEmail, undo while pending, and the
vacation auto-reply (RFC 3834) sent once and never to a list."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email
import email.policy
import smtplib
import socket
import threading
import warnings

import aiohttp
import dns.name
import pytest
from aiosmtpd.controller import Controller
from jmapc import Client, EmailAddress, EmailBodyPart, EmailBodyValue
from jmapc.methods import (
    CustomMethod,
    EmailGet,
    EmailSet,
    EmailSubmissionGet,
    EmailSubmissionQuery,
    EmailSubmissionSet,
    IdentityGet,
    MailboxGet,
)
from jmapc.models import Email, EmailSubmission, EmailSubmissionQueryFilterCondition, UndoStatus

from mailstack.msgauth import keys

SUBMISSION = "urn:ietf:params:jmap:submission"
VACATION = "urn:ietf:params:jmap:vacationresponse"
HOST = "127.0.0.2"
REMOTE = "127.0.0.6"


class Recorder:
    """aiosmtpd handler: what the remote MX was given."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.envelopes.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 OK thanks"


class FakeResolver:
    async def mx(self, domain):
        return [(10, dns.name.from_text("mx.poly.edu"))]

    async def addresses(self, host):
        return [REMOTE]


@pytest.fixture
def remote():
    recorder = Recorder()
    with socket.socket() as probe:  # aiosmtpd needs a real port number up front
        probe.bind((REMOTE, 0))
        port = probe.getsockname()[1]
    controller = Controller(recorder, hostname=REMOTE, port=port, enable_SMTPUTF8=False)
    controller.start()
    yield port, recorder
    controller.stop()


@pytest.fixture
async def node(node_factory, remote):
    port, _recorder = remote
    node = await node_factory(
        listen=("https", "smtp"),
        hostname="mail.crepes.fr",
        host=HOST,
        smtp={"message_auth": "off"},
    )
    await node.add_user("bob@crepes.fr", "hungry")
    await node.add_user("carol@crepes.fr", "hungry")
    await keys.create(node.store, "crepes.fr")
    node.queue.resolver = FakeResolver()
    node.queue.config = dataclasses.replace(node.queue.config, port=port)
    return node


def client(node) -> Client:
    jmap = Client.create_with_password(f"{HOST}:{node.port('https')}", "bob@crepes.fr", "hungry")
    # The node's own certificate (for mail.crepes.fr) is not checked here;
    # nor is the environment's CA bundle, which would override that.
    jmap.requests_session.verify = False
    jmap.requests_session.trust_env = False
    return jmap


async def run(function, *args):
    """jmapc is synchronous: it runs in a thread while the node serves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return await asyncio.to_thread(function, *args)


def mailbox_ids(jmap: Client) -> dict[str, str]:
    found = jmap.request(MailboxGet(ids=None))
    return {m.role or m.name: m.id for m in found.data}


def make_draft(jmap: Client, drafts: str, to: list[str], bcc: list[str] = ()) -> str:
    result = jmap.request(
        EmailSet(
            create={
                "draft": Email(
                    mail_from=[EmailAddress(name="Bob", email="bob@crepes.fr")],
                    to=[EmailAddress(email=a) for a in to],
                    bcc=[EmailAddress(email=a) for a in bcc] or None,
                    subject="crepes tonight",
                    keywords={"$draft": True},
                    mailbox_ids={drafts: True},
                    body_values={"body": EmailBodyValue(value="Bring jam.")},
                    text_body=[EmailBodyPart(part_id="body", type="text/plain")],
                )
            }
        )
    )
    return result.created["draft"].id


async def wait_for(check, seconds: float = 10.0):
    for _ in range(int(seconds / 0.05)):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_send_to_a_local_and_a_remote_recipient(node, remote):
    _port, recorder = remote
    jmap = client(node)
    boxes = await run(mailbox_ids, jmap)
    identity = (await run(jmap.request, IdentityGet(ids=None))).data[0]
    assert identity.email == "bob@crepes.fr" and identity.may_delete is False
    draft = await run(
        make_draft, jmap, boxes["drafts"], ["carol@crepes.fr", "ann@poly.edu"], ["dan@poly.edu"]
    )

    def send():
        return jmap.request(
            EmailSubmissionSet(
                create={"send": EmailSubmission(identity_id=identity.id, email_id=draft)},
                on_success_update_email={
                    "#send": {
                        f"mailboxIds/{boxes['drafts']}": None,
                        f"mailboxIds/{boxes['sent']}": True,
                        "keywords/$draft": None,
                    }
                },
            )
        )

    responses = await run(send)
    submission_response, email_response = responses
    created = submission_response.created["send"]
    assert created.undo_status == UndoStatus.FINAL  # carol has it already
    assert email_response.updated == {draft: None}
    moved = (await run(jmap.request, EmailGet(ids=[draft], properties=["mailboxIds", "keywords"])))
    assert moved.data[0].mailbox_ids == {boxes["sent"]: True}
    assert not moved.data[0].keywords

    # The remote MX gets it once for both of its recipients, without Bcc:, signed.
    await wait_for(lambda: asyncio.sleep(0, result=len(recorder.envelopes) == 1))
    [(mail_from, rcpts, data)] = recorder.envelopes
    assert mail_from == "bob@crepes.fr" and sorted(rcpts) == ["ann@poly.edu", "dan@poly.edu"]
    sent = email.message_from_bytes(data, policy=email.policy.default)
    assert sent["Bcc"] is None and b"dan@poly.edu" not in data
    assert "d=crepes.fr" in sent["DKIM-Signature"]

    async def relayed():
        got = await run(jmap.request, EmailSubmissionGet(ids=[created.id]))
        status = got.data[0].delivery_status
        return status if status["ann@poly.edu"].delivered.value != "queued" else None

    status = await wait_for(relayed)
    assert status["carol@crepes.fr"].delivered.value == "yes"
    # Relayed to another server: its final delivery is unknown to us (§7).
    assert status["ann@poly.edu"].delivered.value == "unknown"
    assert status["ann@poly.edu"].smtp_reply.startswith("250 2.0.0 OK thanks")
    carol = await node.store.account_get("carol@crepes.fr")
    inbox = await node.store.mailbox_get(carol.id, "INBOX")
    [meta] = await node.store.messages(inbox.id)
    assert b"Bring jam." in await node.store.message_bytes(inbox.id, meta.uid)
    found = await run(
        jmap.request,
        EmailSubmissionQuery(filter=EmailSubmissionQueryFilterCondition(email_ids=[draft])),
    )
    assert found.ids == [created.id]


async def test_undo_while_pending(node, remote):
    _port, recorder = remote
    await node.queue.stop()  # nothing leaves until the test says so
    jmap = client(node)
    boxes = await run(mailbox_ids, jmap)
    identity = (await run(jmap.request, IdentityGet(ids=None))).data[0]
    draft = await run(make_draft, jmap, boxes["drafts"], ["ann@poly.edu"])

    def send_then_cancel():
        sent = jmap.request(
            EmailSubmissionSet(
                create={"send": EmailSubmission(identity_id=identity.id, email_id=draft)}
            )
        )
        made = sent.created["send"]
        undone = jmap.request(
            EmailSubmissionSet(update={made.id: {"undoStatus": "canceled"}})
        )
        again = jmap.request(EmailSubmissionGet(ids=[made.id]))
        return made, undone, again.data[0]

    made, undone, now = await run(send_then_cancel)
    assert made.undo_status == UndoStatus.PENDING
    assert undone.updated == {made.id: None}
    assert now.undo_status == UndoStatus.CANCELED
    assert await node.store.queue_list() == []
    await node.queue.run_once()
    assert recorder.envelopes == []


def smtp_to_bob(node, sender: str, extra: str = "") -> None:
    message = (
        f"From: {sender}\r\nTo: bob@crepes.fr\r\nSubject: lunch\r\n"
        f"Message-ID: <{sender.replace('@', '.')}-{extra.count(':')}@poly.edu>\r\n{extra}\r\n"
        "Lunch on Friday?\r\n"
    )
    with smtplib.SMTP(HOST, node.port("smtp"), timeout=10) as s:
        s.sendmail(sender, ["bob@crepes.fr"], message.encode())


async def test_vacation_reply_once_and_never_to_a_list(node, remote):
    _port, recorder = remote
    jmap = client(node)

    def enable():
        method = CustomMethod(
            data={
                "accountId": jmap.account_id,
                "update": {"singleton": {"isEnabled": True, "textBody": "Away until Monday."}},
            }
        )
        method.jmap_method = "VacationResponse/set"
        method.using = {VACATION}
        return jmap.request(method)

    result = await run(enable)
    assert result.data["updated"] == {"singleton": None}
    session = await run(lambda: jmap.jmap_session)
    assert session.state
    await run(smtp_to_bob, node, "ann@poly.edu")
    await run(smtp_to_bob, node, "ann@poly.edu")
    await run(smtp_to_bob, node, "cooks@poly.edu", "List-Id: <cooks.poly.edu>\r\n")
    await run(smtp_to_bob, node, "news@poly.edu", "Precedence: bulk\r\n")
    await wait_for(lambda: asyncio.sleep(0, result=len(recorder.envelopes) >= 1))
    await node.queue.run_once()
    await asyncio.sleep(0.2)
    [(mail_from, rcpts, data)] = recorder.envelopes
    assert (mail_from, rcpts) == ("<>", ["ann@poly.edu"])  # RFC 3834 §3.3: null MAIL FROM
    reply = email.message_from_bytes(data, policy=email.policy.default)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["From"] == "bob@crepes.fr" and reply["Subject"] == "Auto: lunch"
    assert reply["In-Reply-To"] == "<ann.poly.edu-0@poly.edu>"
    assert "Away until Monday." in reply.get_content()
    assert "d=crepes.fr" in reply["DKIM-Signature"]


async def test_the_session_offers_submission_and_vacation_response(node):
    token = base64.b64encode(b"bob@crepes.fr:hungry").decode()
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"https://{HOST}:{node.port('https')}/.well-known/jmap",
            headers={"Authorization": f"Basic {token}"},
            ssl=False,
        ) as response:
            assert response.status == 200
            session = await response.json()
    assert {SUBMISSION, VACATION} <= set(session["capabilities"])
    account = session["primaryAccounts"][SUBMISSION]
    assert session["primaryAccounts"][VACATION] == account
    capabilities = session["accounts"][account]["accountCapabilities"]
    assert capabilities[SUBMISSION]["maxDelayedSend"] == 0
    assert capabilities[SUBMISSION]["submissionExtensions"]["SIZE"] == [
        str(node.limits.message_size)
    ]
    assert capabilities[VACATION] == {}
