"""The behaviour detectors on synthetic streams in event time (what a log or
a store replayed raises): each trouble raises its alert once, naming the
topic, device or address, and resolves when it ends; the same traffic with
natural jitter and no trouble raises none; baselines survive a restart;
state stays bounded."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bustap.detect import DetectSettings, Engine, detector_classes
from bustap.detect.detectors._baseline import Ewma
from bustap.record import Writer

T0 = 1796125870.0
BEHAVIOUR = ("device_silent", "rate_anomaly", "connection_surge", "schema_drift",
             "value_outlier", "malformed_traffic")


def ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def engine(state: Path | None = None, **params: dict[str, Any]) -> Engine:
    s = DetectSettings(learn_secs=0, resolve_secs=5, throttle_secs=3600,
                       detectors={k: dict(v) for k, v in params.items()})
    return Engine(s, event_time=True, state_path=state)


class Bus:
    """Records in time order, stamped, fed to an engine; the alerts kept."""

    def __init__(self, e: Engine) -> None:
        self.e = e
        self.w = Writer("t")
        self.alerts: list[dict[str, Any]] = []
        self.recs: list[dict[str, Any]] = []

    def feed(self, items: list[tuple[float, dict[str, Any]]]) -> None:
        for t, rec in sorted(items, key=lambda x: x[0]):
            r = self.w.stamp({"source": "test://bus", **rec})
            r["timestamp"] = ts(t)
            self.recs.append(r)
            self.alerts += self.e.process([r])
        self.alerts += self.e.tick()

    def fired(self, rule: str, state: str = "firing") -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["rule"] == rule and a["state"] == state]

    def behaviour(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["rule"] in BEHAVIOUR]


def heartbeats(device: str, start: float, end: float, period: float, rnd: random.Random,
               **fields: float) -> Iterator[tuple[float, dict[str, Any]]]:
    t = start
    while t < end:
        vitals = {k: v * rnd.uniform(0.8, 1.2) for k, v in fields.items()}
        yield t, {"kind": "message", "topic": f"hm.agent.heartbeat.{device}",
                  "device": device, "decoder": "bosh-heartbeat", "fields": vitals,
                  "payload": {"job": "router", "vitals": {"load": "x"}}}
        t += period * rnd.uniform(0.9, 1.1)


def sensor(topic: str, start: float, end: float, rate: float, rnd: random.Random
           ) -> Iterator[tuple[float, dict[str, Any]]]:
    t = start
    while t < end:
        yield t, {"kind": "message", "topic": topic,
                  "payload": {"temp": round(rnd.gauss(21, 0.5), 2), "hum": rnd.randint(40, 60)}}
        t += rnd.expovariate(rate)


def test_a_device_that_stops_is_silent_once_then_resolved() -> None:
    rnd = random.Random(1)
    b = Bus(engine())
    b.feed([*heartbeats("agent-1", T0, T0 + 300, 10, rnd, **{"load.1m": 0.3}),
            *heartbeats("agent-2", T0, T0 + 500, 10, rnd, **{"load.1m": 0.3})])
    (a,) = b.fired("device_silent")
    assert a["group"] == {"device": "agent-1"} and a["subject"] == "agent-1"
    assert "hm.agent.heartbeat.agent-1" in a["summary"] and "published every 9.9" in a["summary"]
    (last,) = [r for r in b.recs if r["seq"] in a["evidence"]]
    assert last["device"] == "agent-1"
    b.feed(list(heartbeats("agent-1", T0 + 510, T0 + 560, 10, rnd, **{"load.1m": 0.3})))
    (r,) = b.fired("device_silent", "resolved")
    assert r["alert_id"] == a["alert_id"]


def test_jittered_traffic_without_trouble_raises_nothing() -> None:
    rnd = random.Random(2)
    b = Bus(engine(rate_anomaly={"bucket_secs": 2, "warmup_buckets": 5},
                   schema_drift={"min_samples": 10}, value_outlier={"min_samples": 10}))
    b.feed([*heartbeats("agent-1", T0, T0 + 900, 10, rnd, **{"load.1m": 0.3, "mem": 40}),
            *sensor("sensors/1", T0, T0 + 900, 3, rnd),
            *sensor("sensors/2", T0, T0 + 900, 0.5, rnd)])
    assert b.behaviour() == []


def test_a_publish_flood_is_one_alert_and_resolves() -> None:
    rnd = random.Random(3)
    b = Bus(engine(rate_anomaly={"bucket_secs": 2, "warmup_buckets": 5}))
    flood = [(T0 + 200 + i / 300, {"kind": "message", "topic": "sensors/1",
                                   "payload": {"temp": 1, "hum": 2}}) for i in range(3000)]
    b.feed([*sensor("sensors/1", T0, T0 + 400, 3, rnd), *flood,
            *sensor("sensors/2", T0, T0 + 400, 3, rnd)])
    (a,) = b.fired("rate_anomaly")
    assert a["group"] == {"topic": "sensors/1"} and "a flood" in a["summary"]
    assert a["evidence"] and all(r["topic"] == "sensors/1" for r in b.recs
                                 if r["seq"] in a["evidence"])
    assert len(b.fired("rate_anomaly", "resolved")) == 1


def test_a_drop_to_nothing_on_a_busy_topic() -> None:
    rnd = random.Random(4)
    b = Bus(engine(rate_anomaly={"bucket_secs": 2, "warmup_buckets": 5}))
    b.feed([*sensor("line/1", T0, T0 + 200, 20, rnd), *sensor("line/2", T0, T0 + 300, 20, rnd)])
    (a,) = b.fired("rate_anomaly")
    assert a["group"] == {"topic": "line/1"} and "a drop" in a["summary"]


def publish_in(client: str) -> dict[str, Any]:
    return {"kind": "broker_event", "broker": "mosquitto", "event": "publish_in",
            "client_id": client, "address": "10.0.0.8", "topic": "plc/state"}


def test_publishers_named_by_the_log() -> None:
    b = Bus(engine(rate_anomaly={"bucket_secs": 2, "warmup_buckets": 5}))
    steady = [(T0 + i * 2, publish_in("plc-4")) for i in range(60)]
    flood = [(T0 + 121 + i / 500, publish_in("plc-4")) for i in range(500)]
    # a client known only by a made-up id: gone is not silent (it reconnects
    # under another), and no client's leaving is a drop
    churn = [(T0 + i * 2, publish_in("auto-BFDF1920-A274-4F15-663C-D9683903264D"))
             for i in range(30)]
    b.feed([*steady, *flood, *churn, (T0 + 200, publish_in("plc-4"))])
    fired = [(a["rule"], a["group"]) for a in b.behaviour() if a["state"] == "firing"]
    assert fired == [("rate_anomaly", {"client": "plc-4"}),
                     ("device_silent", {"client": "plc-4"})]  # 122 s -> 200 s


def test_keys_that_change_are_schema_drift_once() -> None:
    rnd = random.Random(5)
    b = Bus(engine(schema_drift={"min_samples": 10}))
    changed = [(T0 + 100 + i, {"kind": "message", "topic": "sensors/1",
                               "payload": {"temperature": 21.5, "hum": "55"}}) for i in range(5)]
    b.feed([*sensor("sensors/1", T0, T0 + 100, 1, rnd), *changed])
    (a,) = b.fired("schema_drift")
    assert a["subject"] == "sensors/1"
    assert "new key 'temperature'" in a["summary"] and "missing 'temp'" in a["summary"]
    assert "'hum' number -> string" in a["summary"]
    assert b.e.active[("schema_drift", "topic=sensors/1")].count == 5


def test_a_vitals_value_that_jumps() -> None:
    rnd = random.Random(6)
    b = Bus(engine(value_outlier={"min_samples": 10}))
    b.feed(list(heartbeats("agent-1", T0, T0 + 300, 10, rnd, **{"load.1m": 0.3, "mem": 40})))
    b.feed(list(heartbeats("agent-1", T0 + 300, T0 + 320, 10, rnd,
                           **{"load.1m": 12.0, "mem": 40})))
    (a,) = b.fired("value_outlier")
    assert a["group"] == {"device": "agent-1", "topic": "hm.agent.heartbeat.agent-1",
                          "field": "load.1m"}
    assert "load.1m = " in a["summary"] and "normally 0.3" in a["summary"]
    b.feed(list(heartbeats("agent-1", T0 + 320, T0 + 400, 10, rnd,
                           **{"load.1m": 0.3, "mem": 40})))
    assert len(b.fired("value_outlier", "resolved")) == 1


def conn(addr: str, port: int, ka: int = 60) -> dict[str, Any]:
    return {"kind": "broker_event", "broker": "mosquitto", "event": "client_connected",
            "address": addr, "port": port, "listener_port": 1883, "keepalive": ka,
            "client_id": f"c{port}"}


def gone(addr: str, port: int) -> dict[str, Any]:
    return {"kind": "broker_event", "broker": "mosquitto", "event": "client_disconnected",
            "address": addr, "port": port, "reason": "closed"}


def test_idle_connections_held_open_are_one_surge() -> None:
    b = Bus(engine())
    normal = [(T0 + i, conn("10.0.0.2", 40000 + i)) for i in range(3)]
    slowite = [(T0 + 100 + i / 10, conn("10.6.6.6", 50000 + i, ka=65535)) for i in range(300)]
    closing = [(T0 + 200 + i / 10, gone("10.6.6.6", 50000 + i)) for i in range(300)]
    b.feed([*normal, *slowite, *closing, (T0 + 300, conn("10.0.0.2", 40009))])
    (a,) = b.fired("connection_surge")
    assert a["group"] == {"address": "10.6.6.6", "connections": "open"}
    assert "50 connections open from 10.6.6.6" in a["summary"]
    assert "keepalive of 600s or more" in a["summary"]
    assert len(a["evidence"]) == 20
    assert len(b.fired("connection_surge", "resolved")) == 1


def test_a_connection_flood_and_a_nats_total() -> None:
    b = Bus(engine(connection_surge={"min_new": 20, "min_open": 30}))
    churn = []
    for i in range(40):
        churn += [(T0 + i / 10, conn("10.7.7.7", 50000 + i)),
                  (T0 + i / 10 + 0.01, gone("10.7.7.7", 50000 + i))]
    b.feed(churn)
    (a,) = b.fired("connection_surge")
    assert a["group"] == {"address": "10.7.7.7", "connections": "new"}
    stats = [(T0 + 100 + i * 10, {"kind": "stats", "broker": "nats", "event": "broker_stats",
                                  "connections": n}) for i, n in enumerate([4, 5, 4, 200, 201])]
    b.feed(stats)
    (t,) = [a for a in b.fired("connection_surge") if "broker" in a["group"]]
    assert "200 clients connected" in t["summary"]


def test_malformed_packets_in_a_burst() -> None:
    b = Bus(engine())
    b.feed([(T0 + i, {"kind": "broker_event", "broker": "mosquitto",
                      "event": "client_disconnected", "address": "10.1.1.1",
                      "reason": "malformed_packet"}) for i in range(6)])
    (a,) = b.fired("malformed_traffic")
    assert a["subject"] == "10.1.1.1" and "malformed packet" in a["summary"]
    assert a["count"] == 5


def test_baselines_survive_a_restart(tmp_path: Path) -> None:
    rnd = random.Random(7)
    state = tmp_path / "alerts.json"
    first = Bus(engine(state))
    first.feed([*heartbeats("agent-1", T0, T0 + 200, 10, rnd, **{"load.1m": 0.3}),
                *sensor("sensors/1", T0, T0 + 200, 1, rnd)])
    first.e.save()
    assert first.behaviour() == []
    again = Bus(engine(state))
    # a restart: the time it was down is not silence, and what was learned is
    # kept (the jump is an outlier at once, without min_samples to relearn)
    again.feed([*sensor("sensors/1", T0 + 900, T0 + 1000, 1, rnd),
                *heartbeats("agent-1", T0 + 901, T0 + 1000, 10, rnd, **{"load.1m": 9.0})])
    assert {a["rule"] for a in again.behaviour()} == {"value_outlier"}


def test_state_is_bounded_and_evictions_counted() -> None:
    s = DetectSettings(learn_secs=0, max_keys=100)
    e = Engine(s, event_time=True)
    w = Writer("t")
    recs = [w.stamp({"kind": "message", "topic": f"t/{i}", "source": "x",
                     "timestamp": ts(T0 + i / 100), "payload": {"v": i}}) for i in range(1000)]
    e.process(recs)
    evicted = e.stats()["state_evicted"]
    assert {"device_silent", "rate_anomaly", "schema_drift", "value_outlier"} <= set(evicted)
    assert all(len(k) <= 100 for d in e.detectors for k in d.keyed())


def test_fields_that_name_are_not_values() -> None:
    # after detector_classes(): importing one detector module first would
    # hide the others from it (it loads them only when none is registered)
    detector_classes()
    from bustap.detect.detectors.value_outlier import numbers

    assert numbers({"fields": {"process-id": 4086, "snmp-interface-index": 529, "seq": 9,
                               "uptime.secs": 11391077, "load.1m": 0.3, "mem.percent": 13,
                               "router_time": 5, "ok": True}}) == {"load.1m": 0.3,
                                                                    "mem.percent": 13}


def test_the_robust_baseline_is_not_dragged_by_one_spike() -> None:
    b = Ewma()
    for x in [10.0, 11, 9, 10, 10.5, 9.5] * 5:
        b.update(x, 0.1, floor=0.5)
    before = b.mean
    b.update(1000.0, 0.1, floor=0.5)
    assert abs(b.mean - before) < 1.0 and b.score(1000.0, 0.5) > 100
