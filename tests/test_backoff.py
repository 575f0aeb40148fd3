from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bustap.backoff import backoff


@given(attempt=st.integers(0, 100_000), initial=st.floats(0.01, 10), maximum=st.floats(0.01, 600))
def test_backoff_is_jittered_and_capped(attempt: int, initial: float, maximum: float) -> None:
    delay = backoff(attempt, initial, maximum)
    assert 0 < delay <= maximum
    assert delay <= initial * 2.0 ** min(attempt, 30)


def test_backoff_spreads_out() -> None:
    # many clients retrying together do not retry at the same instant
    delays = {round(backoff(5, 0.5, 30), 3) for _ in range(50)}
    assert len(delays) > 25


def test_a_broker_down_for_days_does_not_overflow() -> None:
    assert backoff(10_000, 0.5, 30) <= 30
