"""Which peers may log in without TLS when allow_plaintext_on_loopback is on."""

import pytest

from mailstack.common.netguard import is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
def test_loopback_peers(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["10.0.0.1", "192.0.2.7", "2001:db8::1", "fe80::1%eth0", "?"])
def test_other_peers(host):
    assert not is_loopback(host)
