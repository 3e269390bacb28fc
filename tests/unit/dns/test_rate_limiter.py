from mailstack.dns.proto import RateLimiter


def test_rate_limit_drops_past_the_rate_within_a_second_and_resets():
    limiter = RateLimiter(3)
    assert [limiter.allow("127.0.0.9", 10.1) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("127.0.0.8", 10.2)  # per client
    assert limiter.allow("127.0.0.9", 11.0)  # a new second


def test_zero_switches_the_limit_off():
    limiter = RateLimiter(0)
    assert all(limiter.allow("127.0.0.9", 10.0) for _ in range(10_000))
