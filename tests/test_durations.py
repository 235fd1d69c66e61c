"""Duration parsing for config keys: units, sums, and the errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamem.config.durations import UNITS, parse_duration
from streamem.errors import ConfigError


@pytest.mark.parametrize(("value", "seconds"), [
    (30, 30.0), (0.5, 0.5), ("30", 30.0), ("30s", 30.0), ("250ms", 0.25), ("15m", 900.0),
    ("1h30m", 5400.0), ("1h 30m", 5400.0), ("7d", 604800.0), ("2w", 1209600.0),
    ("1.5h", 5400.0), (" 90M ", 5400.0), ("1d12h", 129600.0),
])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, "model.half_life") == seconds


@pytest.mark.parametrize(("value", "message"), [
    ("5 minutes", "is not a duration"), ("1h30", "is not a duration"), ("", "is not a duration"),
    (True, "is not a duration"), (None, "is not a duration"), ([1], "is not a duration"),
    ("-5m", "is not a duration"), (-5, "must be positive"), (0, "must be positive"),
    (float("inf"), "is not a duration"), (float("nan"), "is not a duration"),
    ("200000w", "over 100 years"), ("1y", "is not a duration"),
])
def test_bad_durations_name_the_key(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_duration(value, "aggregate.allowed_lateness")
    assert err.value.path == "aggregate.allowed_lateness" and message in err.value.message


def test_zero_where_allowed() -> None:
    assert parse_duration("0s", "aggregate.allowed_lateness", allow_zero=True) == 0.0


@given(st.lists(st.tuples(st.integers(0, 999), st.sampled_from(sorted(UNITS))), min_size=1,
                max_size=4))
def test_parts_add_up(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{u}" for n, u in parts)
    want = sum(n * UNITS[u] for n, u in parts)
    if want == 0:
        with pytest.raises(ConfigError):
            parse_duration(text, "x")
    else:
        assert parse_duration(text, "x") == pytest.approx(want)
