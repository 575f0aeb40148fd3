from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from bustap.record import Clock, Writer, dumps, loads, parse_timestamp


def test_clock_format_is_iso_utc_microseconds() -> None:
    clock = Clock()
    t = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC).timestamp()
    assert clock.format(t) == "2026-01-02T03:04:05.678901Z"
    assert clock.format(t + 1) == "2026-01-02T03:04:06.678901Z"


@given(st.floats(min_value=0, max_value=4_000_000_000))
def test_clock_round_trips(t: float) -> None:
    ts = Clock().format(t)
    assert ts.endswith("Z") and len(ts) == 27
    assert abs(parse_timestamp(ts).timestamp() - t) < 1e-5


def test_writer_seq_is_strictly_increasing_and_envelope_first() -> None:
    w = Writer("test")
    a = w.new("log_init", "mqtt://h:1883", protocol="mqtt")
    b = w.stamp({"event_type": "log", "source": "x", "kind": "broker_event"})
    assert (a["seq"], b["seq"]) == (0, 1)
    assert list(a)[:5] == ["seq", "writer_id", "timestamp", "event_type", "source"]
    assert a["writer_id"] == "bustap/test"


def test_dumps_is_one_line_and_handles_bytes() -> None:
    line = dumps({"a": b"\xff\x00", "b": "é\n"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert loads(line) == {"a": "/wA=", "b": "é\n"}
    assert orjson.loads(line)["b"] == "é\n"
