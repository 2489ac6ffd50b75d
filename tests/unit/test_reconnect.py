"""The reconnect backoff, with no sockets: the delay sequence, the cap,
jitter within its bounds, and bad settings refused."""

from __future__ import annotations

import random

import pytest

from reactor.reconnect import Backoff


def test_delays_grow_by_the_factor_up_to_the_cap() -> None:
    backoff = Backoff(initial_delay=0.5, factor=3, max_delay=20, jitter=0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.5, 4.5, 13.5, 20, 20]


def test_a_factor_of_one_is_a_constant_delay() -> None:
    backoff = Backoff(initial_delay=2, factor=1, max_delay=10, jitter=0)
    assert {backoff.delay(n) for n in range(1, 50)} == {2}


def test_the_cap_holds_long_after_the_power_would_overflow() -> None:
    for factor in (2, 1.5):  # int ** n grows without bound, float ** n overflows
        backoff = Backoff(initial_delay=1, factor=factor, max_delay=60, jitter=0)
        assert backoff.delay(10_000) == 60


def test_jitter_takes_off_at_most_its_share_and_never_exceeds_the_cap() -> None:
    backoff = Backoff(initial_delay=1, factor=2, max_delay=30, jitter=0.25,
                      rng=random.Random(7))
    for failures in range(1, 12):
        base = min(30, 2 ** (failures - 1))
        delays = [backoff.delay(failures) for _ in range(200)]
        assert all(0.75 * base <= d <= base for d in delays)
        assert len(set(delays)) > 150  # really random, not one fixed cut
    assert max(backoff.delay(40) for _ in range(1000)) <= 30


def test_a_seeded_rng_gives_the_same_sequence() -> None:
    def sequence() -> list:
        backoff = Backoff(jitter=0.5, rng=random.Random(42))
        return [backoff.delay(n) for n in range(1, 10)]
    assert sequence() == sequence()


@pytest.mark.parametrize("kwargs, message", [
    ({"initial_delay": -1}, "initial_delay must be >= 0"),
    ({"factor": 0.5}, "factor must be >= 1"),
    ({"initial_delay": 5, "max_delay": 1}, "max_delay (1) is below initial_delay (5)"),
    ({"jitter": 1.5}, "jitter must be between 0 and 1"),
    ({"jitter": -0.1}, "jitter must be between 0 and 1"),
])
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Backoff(**kwargs)
    assert message in str(info.value)


def test_failures_start_at_one() -> None:
    with pytest.raises(ValueError, match="failures must be >= 1"):
        Backoff().delay(0)


def test_repr_shows_the_settings() -> None:
    assert repr(Backoff(1, 2, 60, 0.1)) == \
        "Backoff(initial_delay=1, factor=2, max_delay=60, jitter=0.1)"
