"""Behaviour detectors on real brokers, live: BOSH agents heartbeating on a
nats-server and sensors publishing on a Mosquitto, with natural jitter.
With troubles (an agent and a sensor that stop then come back, a publish
flood on an existing topic, a payload whose keys change, a vitals value
that jumps; 300 idle connections held open) each raises its alert once,
naming the topic, device or address, and the ones that end resolve. The
same traffic without the troubles raises none. Learning, periods and
buckets are shrunk in the rules file so a run takes seconds."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.conftest import Bustap
from tests.fixtures.brokers import Mosquitto, NatsServer

from bustap.net.mqtt import ConnectOptions, MqttClient

pytestmark = pytest.mark.e2e

RULES = """
[detect]
learn_secs = 3
resolve_secs = 1
throttle_secs = 600
device_silent = { min_period_secs = 0.1, min_beats = 8, periods = 5 }
rate_anomaly = { bucket_secs = 0.5, warmup_buckets = 4, min_rate = 50 }
schema_drift = { min_samples = 8 }
value_outlier = { min_samples = 8 }
connection_surge = { bucket_secs = 1 }
"""
BEHAVIOUR = {"device_silent", "rate_anomaly", "connection_surge", "schema_drift",
             "value_outlier", "malformed_traffic"}
PERIOD = 0.4


def alerts(recs: list[dict[str, Any]], state: str = "firing") -> list[dict[str, Any]]:
    return [r for r in recs if r.get("event_type") == "alert" and r["state"] == state
            and r["rule"] in BEHAVIOUR]


def heartbeat(job: str, load: float, rnd: random.Random) -> bytes:
    return json.dumps({
        "deployment": "cf", "job": job, "index": 0, "job_state": "running",
        "vitals": {"cpu": {"sys": f"{rnd.uniform(0.3, 0.6):.1f}", "user": "1.2", "wait": "0.0"},
                   "load": [f"{load:.2f}", "0.20", "0.10"],
                   "mem": {"kb": "513568", "percent": str(rnd.randint(12, 14))},
                   "disk": {"system": {"percent": "47", "inode_percent": "33"}}},
        "node_id": "n1"}).encode()


def reading(rnd: random.Random, renamed: bool = False) -> bytes:
    temp = round(rnd.gauss(21, 0.3), 2)
    return json.dumps({"temperature" if renamed else "temp": temp,
                       "hum": rnd.randint(45, 55)}).encode()


async def traffic(mqtt_port: int, nats_url: str, secs: float, troubles: bool) -> None:
    """Two BOSH agents on NATS and three sensors on MQTT, jittered; with
    ``troubles`` the timeline the module docstring lists."""
    rnd = random.Random(11)
    nc = await nats.connect(nats_url)
    mq = MqttClient(ConnectOptions(host="127.0.0.1", port=mqtt_port, client_id="sensor-hub",
                                   version=4))
    await mq.connect()
    start = time.monotonic()

    def trouble(a: float, b: float) -> bool:
        return troubles and a <= time.monotonic() - start < b

    async def agent(name: str) -> None:
        while time.monotonic() - start < secs:
            if not (name == "agent-2" and trouble(6, 10)):
                load = 12.0 if name == "agent-1" and trouble(7, 8.2) else rnd.uniform(0.1, 0.3)
                await nc.publish(f"hm.agent.heartbeat.{name}", heartbeat("router", load, rnd))
            await asyncio.sleep(PERIOD * rnd.uniform(0.9, 1.1))

    async def sensor(topic: str) -> None:
        flooded = False
        while time.monotonic() - start < secs:
            if not (topic == "sensors/2" and trouble(6, 10)):
                await mq.publish(topic, reading(rnd, topic == "sensors/3" and trouble(7, 99)))
            if topic == "sensors/1" and trouble(6.5, 99) and not flooded:
                flooded = True
                for _ in range(2000):
                    await mq.publish(topic, reading(rnd))
            await asyncio.sleep(PERIOD * rnd.uniform(0.9, 1.1))

    await asyncio.gather(agent("agent-1"), agent("agent-2"),
                         *(sensor(f"sensors/{i}") for i in (1, 2, 3)))
    await nc.flush()
    await nc.close()
    await mq.close()


@pytest.mark.parametrize("troubles", [True, False], ids=["troubles", "clean"])
def test_sensors_and_agents(troubles: bool, mosquitto: Mosquitto, nats_server: NatsServer,
                            bustap_bg: Callable[..., Bustap], tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    b = bustap_bg("capture", mosquitto.url, nats_server.url, "--rules", str(rules),
                  "--name", "behaviour", env={"BUSTAP_STATE_DIR": str(tmp_path / "state")})
    b.wait_ready(2)
    asyncio.run(traffic(mosquitto.port, nats_server.url, 14.0, troubles))
    assert b.stop() == 0  # at once: the end of the traffic is not a silence
    recs = b.records()
    fired = sorted((a["rule"], a["subject"]) for a in alerts(recs))
    if not troubles:
        assert fired == [], alerts(recs)
        return
    assert fired == [("device_silent", "agent-2"), ("device_silent", "sensors/2"),
                     ("rate_anomaly", "sensors/1"), ("schema_drift", "sensors/3"),
                     ("value_outlier", "agent-1")], alerts(recs)
    by = {a["rule"] + " " + a["subject"]: a for a in alerts(recs)}
    assert "hm.agent.heartbeat.agent-2" in by["device_silent agent-2"]["summary"]
    assert by["device_silent agent-2"]["group"] == {"device": "agent-2"}
    assert by["device_silent sensors/2"]["group"] == {"topic": "sensors/2"}
    assert "a flood" in by["rate_anomaly sensors/1"]["summary"]
    assert "'temperature'" in by["schema_drift sensors/3"]["summary"]
    out = by["value_outlier agent-1"]
    assert out["group"] == {"device": "agent-1", "topic": "hm.agent.heartbeat.agent-1",
                            "field": "load.1m"}
    seqs = {r["seq"]: r for r in recs}
    for a in by.values():  # the evidence is the messages behind it
        assert a["evidence"], a
        assert all(seqs[s].get("kind") == "message" for s in a["evidence"])
    (ev,) = [seqs[s] for s in out["evidence"]]
    assert ev["fields"]["load.1m"] == 12.0
    resolved = sorted((a["rule"], a["subject"]) for a in alerts(recs, "resolved"))
    assert resolved == [("device_silent", "agent-2"), ("device_silent", "sensors/2"),
                        ("rate_anomaly", "sensors/1"), ("value_outlier", "agent-1")]
    assert "ALERT [warning] device_silent: device agent-2 silent" in b.stderr()


def _connect(client_id: str, keepalive: int) -> bytes:
    def s(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    body = s(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + s(client_id.encode())
    return bytes([0x10, len(body)]) + body


def hold_idle(port: int, n: int) -> list[socket.socket]:
    """SlowITe: connections that CONNECT with the longest keepalive, then idle."""
    socks = []
    for i in range(n):
        sock = socket.create_connection(("127.0.0.1", port), 5)
        sock.sendall(_connect(f"slow-{i}", 65535))
        sock.recv(4)  # CONNACK
        socks.append(sock)
    return socks


def test_300_idle_connections_are_one_surge(mosquitto_factory: Callable[..., Mosquitto],
                                            bustap_bg: Callable[..., Bustap],
                                            tmp_path: Path) -> None:
    m = mosquitto_factory("allow_anonymous true\nmax_keepalive 65535")
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.replace("learn_secs = 3", "learn_secs = 1"))
    log_url = f"file://{m.log}?format=mosquitto&from_start=true&state=none&poll_secs=0.05"
    b = bustap_bg("capture", log_url, "--rules", str(rules),
                  env={"BUSTAP_STATE_DIR": str(tmp_path / "state")})
    b.wait_ready()
    time.sleep(1.5)
    normal = hold_idle(m.port, 3)  # a few clients that stay, as usual
    time.sleep(1.0)
    socks = hold_idle(m.port, 300)
    try:
        recs = b.wait_for(lambda rs: bool(alerts(rs)), timeout=20)
        time.sleep(1.0)
    finally:
        for s in socks:
            s.close()
    recs = b.wait_for(lambda rs: bool(alerts(rs, "resolved")), timeout=20)
    for s in normal:
        s.close()
    assert b.stop() == 0
    recs = b.records()
    (a,) = alerts(recs)
    assert a["rule"] == "connection_surge" and a["subject"] == "127.0.0.1"
    assert a["group"] == {"address": "127.0.0.1", "connections": "open"}
    assert "keepalive of 600s or more" in a["summary"]
    seqs = {r["seq"]: r for r in recs}
    assert {seqs[s]["event"] for s in a["evidence"]} <= {"connection_opened", "client_connected"}
    assert all(seqs[s]["address"] == "127.0.0.1" for s in a["evidence"])


def test_idle_nats_connections_seen_by_the_monitoring_endpoint(
        nats_server: NatsServer, bustap_bg: Callable[..., Bustap], tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.replace("learn_secs = 3", "learn_secs = 1"))
    b = bustap_bg("capture", f"nats-monitor://127.0.0.1:{nats_server.http_port}"
                  "?interval_secs=0.5", "--rules", str(rules),
                  env={"BUSTAP_STATE_DIR": str(tmp_path / "state")})
    b.wait_ready()
    time.sleep(1.5)
    socks = []
    try:
        for _ in range(300):  # CONNECT, then nothing (the server's PINGs unanswered)
            sock = socket.create_connection(("127.0.0.1", nats_server.port), 5)
            sock.recv(4096)  # INFO
            sock.sendall(b'CONNECT {"verbose":false,"name":"idle"}\r\n')
            socks.append(sock)
        recs = b.wait_for(lambda rs: bool(alerts(rs)), timeout=20)
    finally:
        for s in socks:
            s.close()
    assert b.stop() == 0
    (a,) = alerts(b.records())
    assert a["rule"] == "connection_surge" and a["subject"] == "127.0.0.1", a
    assert "connections open from 127.0.0.1" in a["summary"]
    del recs
