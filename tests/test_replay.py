"""Payloads restored from records, and what cannot be restored exactly is counted."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fixtures.decode_samples import decode

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


def test_json_comes_back_as_received_and_a_lost_difference_is_counted() -> None:
    stats = ReplayStats()
    lines = [line(format="json", payload={"x": 1}, size=7),      # b'{"x":1}': exact
             line(format="json", payload={"x": 1.5}, payload_raw='{ "x": 1.50 }', size=13),
             line(format="json", payload={"x": 1}, size=9),      # from before payload_raw
             b"not json", line(kind="broker_event"), line(topic=5, format="text", payload="")]
    got = list(outgoing(iter(lines), stats))
    assert [(m.payload, m.exact) for m in got] == [
        (b'{"x":1}', True), (b'{ "x": 1.50 }', True), (b'{"x":1}', False)]
    assert got[0].at == 1767225600.25
    assert stats.skipped == {"bad_line": 1, "bad_record": 1}


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**80, 2**80), st.text(max_size=10),
              st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(JSON, st.sampled_from([None, 0, 2]), st.booleans(),
       st.sampled_from([(",", ":"), (", ", ": ")]),
       st.sampled_from(["any/topic", "/junos/events/syslog/X", "pmacct/telemetry"]))
def test_json_as_devices_write_it_comes_back_byte_for_byte(
        value: Any, indent: int | None, ascii_only: bool, separators: tuple[str, str],
        topic: str) -> None:
    payload = json.dumps(value, indent=indent, ensure_ascii=ascii_only,
                         separators=separators).encode()
    rec = decode(topic, payload)
    if rec["format"] == "json":
        assert ("payload_raw" in rec) == (orjson.dumps(rec["payload"]) != payload)
    stats = ReplayStats()
    rec.update(kind="message", topic=topic, timestamp="2026-01-01T00:00:00Z")
    [msg] = outgoing(iter([orjson.dumps(rec)]), stats)
    assert msg.payload == payload and msg.exact
