"""`bustap demo`: its own brokers, the simulated network, everything captured."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import read_records, run_bustap

pytestmark = pytest.mark.e2e


def test_demo_captures_every_kind_of_traffic(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    res = run_bustap("demo", "--duration", "7", "--quiet", "--rate", "2", "-o", str(out),
                     timeout=60)
    assert res.returncode == 0, res.stderr
    recs = read_records(out)
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    decoders = {r.get("decoder") for r in recs if r.get("kind") == "message"}
    assert {"junos-jet", "bosh-heartbeat", "bosh-rpc", "number", "binary"} <= decoders
    events = {r.get("event") for r in recs if r.get("kind") == "broker_event"}
    assert {"broker_started", "client_connected", "auth_failed"} <= events
    assert any(r.get("device") == "vmx4" for r in recs)
    assert "demo-router-pw" not in out.read_text()
    assert sum(r["event_type"] == "log_init" for r in recs) == 4
