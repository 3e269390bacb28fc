"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) text, without the network: the
TXT records, the policy file, MX matching, and the cache that never lets a
failed refresh take a policy away (§5.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstack.queue.mtasts import (
    FETCH_ERROR,
    POLICY_INVALID,
    Cached,
    MtaSts,
    Policy,
    PolicyCache,
    PolicyError,
    parse_policy,
    parse_record,
    sts_mx_check,
)
from mailstack.queue.tlsrpt import TlsResults, parse_rua


def test_exactly_one_sts_record_counts() -> None:
    assert parse_record(["v=STSv1; id=20160831085700Z;"]) == "20160831085700Z"
    assert parse_record(["v=spf1 -all", "v=STSv1;id=abc"]) == "abc"
    # Two policies, a bad id, a missing id, a wrong version: no record (§3.1).
    assert parse_record(["v=STSv1; id=a", "v=STSv1; id=b"]) is None
    assert parse_record(["v=STSv1; id=not-alnum!"]) is None
    assert parse_record(["v=STSv1;"]) is None
    assert parse_record(["v=STSv10; id=a"]) is None
    assert parse_record(["v=STSv1; id=" + "a" * 33]) is None


def test_the_policy_file() -> None:
    text = (
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
        "max_age: 604800\r\n"
    )
    policy = parse_policy(text)
    assert policy.mode == "enforce" and policy.max_age == 604800
    assert policy.mx == ("mail.example.com", "*.example.net")
    assert parse_policy(text.replace("\r\n", "\n")).mx == policy.mx  # LF is accepted
    assert parse_policy(text + "future_key: x\r\n").mode == "enforce"  # unknown keys ignored
    # §3.2: max_age is 1*10DIGIT, and at most a year is kept.
    assert parse_policy(text.replace("604800", "9999999999")).max_age == 31557600
    for bad in (
        text.replace("STSv1", "STSv2"),
        text.replace("enforce", "strict"),
        text.replace("max_age: 604800", "max_age: soon"),
        text.replace("604800", "99999999999"),
        "version: STSv1\nmode: enforce\nmax_age: 1\n",  # no mx
        text + "mode: testing\r\n",  # two modes
        "garbage without colons",
    ):
        with pytest.raises(PolicyError) as caught:
            parse_policy(bad)
        assert caught.value.result == POLICY_INVALID
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 86400\n").mx == ()


def test_mx_patterns_match_one_label() -> None:
    policy = Policy("enforce", ("mail.example.com", "*.example.net"), 86400)
    assert policy.matches("MAIL.example.com.")
    assert policy.matches("mx1.example.net")
    assert not policy.matches("example.net") and not policy.matches("a.b.example.net")
    assert not policy.matches("evil-mail.example.com")

    class H:
        def __init__(self, name: str) -> None:
            self.name = name

    hosts = [H("mx1.example.net"), H("backup.other.org")]
    kept, enforce = sts_mx_check(policy, hosts)
    assert [h.name for h in kept] == ["mx1.example.net"] and enforce
    kept, enforce = sts_mx_check(Policy("testing", ("x",), 1), hosts)
    assert kept == hosts and not enforce


async def test_the_cache_decides_and_a_failure_never_downgrades(tmp_path: Path) -> None:
    now = [1000.0]
    records = {"_mta-sts.example.com": ["v=STSv1; id=one"]}
    fetched: list[str] = []
    answer: dict[str, object] = {"policy": Policy("enforce", ("mx.example.com",), 100)}

    async def txt(name: str) -> list[str]:
        value = records.get(name)
        if value is None:
            raise OSError("SERVFAIL")
        return value

    async def fetch(domain: str) -> Policy:
        fetched.append(domain)
        result = answer["policy"]
        if isinstance(result, PolicyError):
            raise result
        assert isinstance(result, Policy)
        return result

    sts = MtaSts(txt, fetch, PolicyCache(tmp_path), clock=lambda: now[0])
    first = await sts.lookup("example.com")
    assert (
        first.policy is not None and first.policy.mode == "enforce" and fetched == ["example.com"]
    )
    assert (await sts.lookup("example.com")).policy == first.policy and len(fetched) == 1
    # A new id with a policy host that fails: the cached policy stays in force.
    records["_mta-sts.example.com"] = ["v=STSv1; id=two"]
    answer["policy"] = PolicyError("down", FETCH_ERROR)
    failed = await sts.lookup("example.com")
    assert failed.policy == first.policy and failed.failure == FETCH_ERROR
    # The record disappears, or DNS fails: still in force until max_age.
    del records["_mta-sts.example.com"]
    assert (await sts.lookup("example.com")).policy == first.policy
    # After max_age, nothing is in force any more.
    now[0] += 101
    assert (await sts.lookup("example.com")).policy is None
    # A cache file that does not parse is no policy, never a crash.
    (tmp_path / "broken.org.json").write_text("{not json")
    assert PolicyCache(tmp_path).get("broken.org") is None
    PolicyCache(tmp_path).put("x.org", Cached(first.policy, "id", 0, 1))
    assert oct((tmp_path / "x.org.json").stat().st_mode & 0o777) == "0o600"


def test_tls_rpt_records_and_counts(tmp_path: Path) -> None:
    assert parse_rua(["v=TLSRPTv1; rua=mailto:r@example.com,https://r.example.com/x"]) == [
        "mailto:r@example.com",
        "https://r.example.com/x",
    ]
    assert parse_rua(["v=TLSRPTv1; rua=mailto:a@x", "v=TLSRPTv1; rua=mailto:b@x"]) == []
    assert parse_rua(["v=TLSRPTv1; rua=ftp://x"]) == []
    now = [86400.0 * 20000 + 10]
    results = TlsResults(tmp_path, clock=lambda: now[0])
    policy = {"policy-type": "no-policy-found", "policy-domain": "example.com"}
    results.success("example.com", policy)
    results.failure("example.com", policy, "starttls-not-supported", "mx.example.com", "192.0.2.1")
    results.failure("example.com", policy, "starttls-not-supported", "mx.example.com", "192.0.2.1")
    assert results.days_to_report() == []  # today is not over
    now[0] += 86400
    [day] = results.days_to_report()
    report = results.report(day, "example.com", "mx.test", "postmaster@mx.test")
    [entry] = report["policies"]
    assert entry["summary"] == {
        "total-successful-session-count": 1,
        "total-failure-session-count": 2,
    }
    assert entry["failure-details"] == [
        {
            "result-type": "starttls-not-supported",
            "failed-session-count": 2,
            "receiving-mx-hostname": "mx.example.com",
            "receiving-ip": "192.0.2.1",
        }
    ]
    results.mark_sent(day)
    assert TlsResults(tmp_path, clock=lambda: now[0]).days_to_report() == []
