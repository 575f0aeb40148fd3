"""The dump processor and its records."""

from __future__ import annotations

from tests.test_sinks_duckdb import records

from bustap.dump import DumpState, dump_records


def test_dump_per_topic_and_client() -> None:
    state = DumpState()
    state(records(6))
    state([{"kind": "broker_event", "event": "client_connected", "client_id": "c1",
            "address": "10.0.0.1", "username": "alice", "timestamp": "T1", "source": "log"},
           {"kind": "broker_event", "event": "publish_in", "client_id": "c1", "topic": "t/0",
            "timestamp": "T2", "source": "log"}])
    state(records(1, start=6))  # t/0 again, now with a known publisher
    snap = state.snapshot()
    state(records(3, start=100))  # after the snapshot: not in it
    out = dump_records(snap, period=60, source="mqtt://x")
    assert out[0] == {"event_type": "dump_init", "source": "mqtt://x", "dump_period": 60}
    topics = {r["topic"]: r for r in out if r.get("kind") == "topic"}
    assert topics["t/0"]["count"] == 3 and topics["t/0"]["payload"] == {"v": 6}
    assert topics["t/0"]["last_publisher"] == "c1"
    assert topics["t/1"]["count"] == 2 and "last_publisher" not in topics["t/1"]
    client = next(r for r in out if r.get("kind") == "client")
    assert client["connected"] is True and client["address"] == "10.0.0.1"
    assert client["username"] == "alice" and client["publish"] == 1
    assert out[-1] == {"event_type": "dump_close", "source": "mqtt://x", "tables": 2,
                       "entries": 4}


def test_empty_dump() -> None:
    out = dump_records(DumpState().snapshot(), period=None, source="*")
    assert [r["event_type"] for r in out] == ["dump_init", "dump_close"]
    assert out[-1]["entries"] == 0
