"""Payloads restored from records, and what cannot be restored exactly is counted."""

from __future__ import annotations

import base64

import orjson
from hypothesis import given
from hypothesis import strategies as st

from bustap.replay import ReplayStats, outgoing


def line(**rec: object) -> bytes:
    base = {"seq": 1, "writer_id": "bustap/t", "timestamp": "2026-01-01T00:00:00.250000Z",
            "event_type": "log", "source": "mqtt://h", "kind": "message", "protocol": "mqtt",
            "topic": "a/b"}
    return orjson.dumps({**base, **rec})


@given(st.binary(max_size=64))
def test_binary_and_text_payloads_come_back_byte_for_byte(data: bytes) -> None:
    stats = ReplayStats()
    lines = [line(format="binary", payload=base64.b64encode(data).decode(), size=len(data))]
    try:
        text = data.decode("utf-8")
        lines.append(line(format="text", payload=text, size=len(data)))
    except UnicodeDecodeError:
        pass
    got = list(outgoing(iter(lines), stats))
    assert all(m.payload == data and m.exact for m in got)


def test_json_re_encoded_is_counted_inexact_and_bad_lines_skipped() -> None:
    stats = ReplayStats()
    lines = [line(format="json", payload={"x": 1}, size=7),      # b'{"x":1}': exact
             line(format="json", payload={"x": 1}, size=9),      # b'{ "x": 1 }' was sent
             b"not json", line(kind="broker_event"), line(topic=5, format="text", payload="")]
    got = list(outgoing(iter(lines), stats))
    assert [(m.payload, m.exact) for m in got] == [(b'{"x":1}', True), (b'{"x":1}', False)]
    assert got[0].at == 1767225600.25
    assert stats.skipped == {"bad_line": 1, "bad_record": 1}
