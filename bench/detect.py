"""Detection quality and the cost of detector state.

``python -m bench.detect`` starts a Mosquitto with passwords and a verbose
log, runs ``bustap capture`` on its bus and its log with every detector on,
keeps a steady background of sensors publishing (jittered), and reproduces
the attack classes of the public MQTT intrusion datasets (MQTTset,
MQTT-IoT-IDS2020; ../shared/reference/detection.md 1.2) one after the
other: connection flood, publish flood, SlowITe (idle connections held open
with the longest keepalive), malformed packets, password brute force, and a
scan that subscribes to ``#`` and ``$SYS/#``. Then a second run with the
background alone for ``--clean-secs``: every alert it raises is a false one.
Time is compressed: learning and buckets are seconds, not minutes (RULES).

It also measures the memory of the detectors' state with many keys (topics,
devices, addresses) at the default cap (``max_keys`` 10,000).

    python -m bench.detect --clean-secs 120
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.brokers import Mosquitto, mosquitto_passwd  # noqa: E402

BUSTAP = [sys.executable, "-m", "bustap.cli"]
RULES = """
[detect]
learn_secs = 8
resolve_secs = 2
throttle_secs = 600
# posture findings (passwords over plaintext, the broker's version, new
# names) are true on this test bed; they are not what is measured here
disable = ["plaintext_credentials", "broker_version", "new_client", "new_address",
           "anonymous_access"]
admins = ["bustap*"]
device_silent = { min_period_secs = 0.1, min_beats = 8, periods = 5 }
rate_anomaly = { bucket_secs = 0.5, warmup_buckets = 6, min_rate = 50 }
schema_drift = { min_samples = 8 }
value_outlier = { min_samples = 8 }
connection_surge = { bucket_secs = 1 }
"""
BEHAVIOUR = ("device_silent", "rate_anomaly", "connection_surge", "schema_drift",
             "value_outlier", "malformed_traffic")
USERS = {"sensor": "s3nsor", "bustap": "tap", "alice": "correct-horse"}
PERIOD = 0.4


# --- the bus: a background of sensors -----------------------------------------------

class Background(threading.Thread):
    """Five sensors publishing JSON readings every PERIOD (jittered)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from bustap.net.mqtt import ConnectOptions, MqttClient

        rnd = random.Random(5)
        c = MqttClient(ConnectOptions(host="127.0.0.1", port=self.port, client_id="sensor-hub",
                                      username="sensor", password=USERS["sensor"], version=4))
        await c.connect()
        while not self.stop.is_set():
            for i in range(1, 6):
                body = {"temp": round(rnd.gauss(21, 0.4), 2), "hum": rnd.randint(40, 60)}
                await c.publish(f"sensors/{i}", json.dumps(body).encode())
            await asyncio.sleep(PERIOD * rnd.uniform(0.9, 1.1))
        await c.close()


def _s(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def connect_packet(cid: str, user: str | None = None, password: str | None = None,
                   keepalive: int = 60) -> bytes:
    flags = 0x02 | (0xC0 if user else 0)
    body = _s(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + _s(cid.encode())
    if user:
        body += _s(user.encode()) + _s((password or "").encode())
    return bytes([0x10, len(body)]) + body


def _session(port: int, data: bytes, read: bool = True) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), 5)
    sock.sendall(data)
    if read:
        sock.recv(4)
    return sock


# --- the attacks --------------------------------------------------------------------

def connection_flood(port: int) -> None:
    """mqtt-malaria / MQTTSA: connect and drop, as fast as it goes."""
    for i in range(400):
        _session(port, connect_packet(f"flood-{i}", "sensor", USERS["sensor"])).close()


def publish_flood(port: int) -> None:
    """MQTTSA's flood: an existing topic, thousands of messages at once."""
    sock = _session(port, connect_packet("flooder", "sensor", USERS["sensor"]))
    body = _s(b"sensors/1") + b'{"temp": 21.0, "hum": 50}'
    packet = bytes([0x30, len(body)]) + body
    sock.sendall(packet * 5000)
    time.sleep(0.5)
    sock.close()


def slowite(port: int, hold: float = 4.0) -> None:
    """SlowITe: hundreds of connections with the longest keepalive, idle."""
    socks = [_session(port, connect_packet(f"slow-{i}", "sensor", USERS["sensor"], 65535))
             for i in range(300)]
    time.sleep(hold)
    for s in socks:
        s.close()


def malformed(port: int) -> None:
    """MQTTSA's malformed data: packets the protocol forbids (a PUBLISH at
    QoS 3, a topic length past the packet's end)."""
    for i in range(8):
        sock = _session(port, connect_packet(f"fuzz-{i}", "sensor", USERS["sensor"]))
        bad = bytes([0x36, 5]) + b"\x00\x09abc" if i % 2 else bytes([0x30, 4]) + b"\xff\xffab"
        sock.sendall(bad)
        with contextlib.suppress(OSError):
            sock.recv(4)
        sock.close()


def brute_force(port: int) -> None:
    """mqtt-pwn / Metasploit's MQTT login scanner: one guess a connection."""
    for i in range(20):
        _session(port, connect_packet(f"guess-{i}", "alice", f"password{i}")).close()


def scan(port: int) -> None:
    """nmap mqtt-subscribe / MQTTSA: subscribe to everything and to $SYS."""
    sock = _session(port, connect_packet("scanner", "sensor", USERS["sensor"]))
    for pid, topic in ((1, b"#"), (2, b"$SYS/#")):
        body = struct.pack("!H", pid) + _s(topic) + b"\x00"
        sock.sendall(bytes([0x82, len(body)]) + body)
        sock.recv(5)
    time.sleep(0.5)
    sock.close()


ATTACKS: list[tuple[str, Callable[[int], None], set[str]]] = [
    ("connection flood", connection_flood, {"connection_surge", "max_connections"}),
    ("publish flood", publish_flood, {"rate_anomaly"}),
    ("SlowITe (300 idle connections)", slowite, {"connection_surge"}),
    ("malformed packets", malformed, {"malformed_traffic"}),
    ("password brute force", brute_force, {"auth_failure_burst"}),
    ("scan: subscribe # and $SYS/#", scan, {"wildcard_subscription"}),
]


# --- runs -----------------------------------------------------------------------------

def _alerts(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    recs = [json.loads(x) for x in out.read_bytes().splitlines() if x.strip()]
    return [r for r in recs if r.get("event_type") == "alert" and r["state"] == "firing"]


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Bed:
    """A Mosquitto, the background, and bustap capturing its bus and log."""

    def __init__(self, work: Path, name: str) -> None:
        self.work = work / name
        self.work.mkdir(parents=True)
        pw = mosquitto_passwd(self.work / "passwd", USERS)
        self.broker = Mosquitto(self.work / "mosq", extra=(
            f"allow_anonymous false\npassword_file {pw}\nmax_keepalive 65535\n")).start()
        rules = self.work / "rules.toml"
        rules.write_text(RULES)
        self.out = self.work / "out.jsonl"
        log = (f"file://{self.broker.log}?format=mosquitto&from_start=true&state=none"
               "&poll_secs=0.05")
        self.bustap = subprocess.Popen(
            [*BUSTAP, "capture", f"mqtt://bustap:tap@127.0.0.1:{self.broker.port}", log,
             "--rules", str(rules), "-o", str(self.out), "--alert-output", "console"],
            stderr=subprocess.DEVNULL, env={**os.environ, "BUSTAP_STATE_DIR": str(
                self.work / "state")})
        self.background = Background(self.broker.port)
        self.background.start()

    def close(self) -> None:
        self.background.stop.set()
        self.background.join(5)
        self.bustap.terminate()
        self.bustap.wait(20)
        self.broker.stop()


def attack_run(work: Path, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    bed = Bed(work, "attacks")
    rows = []
    try:
        time.sleep(12)  # learn_secs and the detectors' warm-up
        for name, attack, rules in ATTACKS:
            progress(f"attack: {name}")
            before = {a["alert_id"] for a in _alerts(bed.out)}
            start = time.time()
            threading.Thread(target=attack, args=(bed.broker.port,), daemon=True).start()
            found: dict[str, Any] | None = None
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and found is None:
                time.sleep(0.2)
                found = next((a for a in _alerts(bed.out) if a["rule"] in rules
                              and a["alert_id"] not in before), None)
            others = sorted({a["rule"] for a in _alerts(bed.out)
                             if a["alert_id"] not in before and a["rule"] not in rules})
            rows.append({"attack": name, "alert raised": found["rule"] if found else "NO",
                         "subject": found["subject"] if found else "-",
                         "latency_secs": round(_epoch(found["timestamp"]) - start, 2)
                         if found else None,
                         "other alerts": ", ".join(others) or "-"})
            time.sleep(6)  # the attack ends and its alerts resolve
    finally:
        bed.close()
    return rows


def clean_run(work: Path, secs: float, progress: Callable[[str], None]) -> dict[str, Any]:
    progress(f"clean background alone for {secs:g}s")
    bed = Bed(work, "clean")
    try:
        time.sleep(secs)
    finally:
        bed.close()
    false = _alerts(bed.out)
    return {"attack": f"none: background alone, {secs:g}s",
            "alert raised": f"{len(false)} false" if false else "none (0 false alerts)",
            "subject": ", ".join(sorted({a['rule'] + ' ' + a['subject'] for a in false}))
            or "-", "latency_secs": None, "other alerts": "-"}


def state_memory(keys: int = 100_000) -> dict[str, Any]:
    """The detectors' state after ``keys`` topics, devices and addresses."""
    from bustap.detect import DetectSettings, Engine, detector_classes
    from bustap.record import Writer

    w = Writer("bench")
    tracemalloc.start()
    # the behaviour detectors alone, learning (so that no alert is kept)
    e = Engine(DetectSettings(learn_secs=1e9, disable=[
        d for d in detector_classes() if d not in BEHAVIOUR]))
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.time()
    for start in range(0, keys, 1000):
        batch = []
        for i in range(start, start + 1000):
            batch.append(w.stamp({"kind": "message", "topic": f"sensors/{i}/state",
                                  "device": f"dev-{i}", "source": "mqtt://bench",
                                  "payload": {"temp": 20.5, "hum": 50, "ok": True},
                                  "fields": {"temp": 20.5, "hum": 50}}))
            batch.append(w.stamp({"kind": "broker_event", "broker": "mosquitto",
                                  "event": "client_connected", "address": f"10.{i >> 16}."
                                  f"{(i >> 8) & 255}.{i & 255}", "port": 40000,
                                  "keepalive": 60, "listener_port": 1883}))
        e.process(batch)
        e.tick(t0 + start / 1000)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    with tempfile.TemporaryDirectory() as tmp:
        e.state_path = Path(tmp) / "state.json"
        e.save()
        size = e.state_path.stat().st_size
    evicted = sum(e.stats()["state_evicted"].values())
    return {"case": f"{keys:,} topics, devices and addresses, behaviour detectors",
            "max_keys": e.settings.max_keys,
            "state_mb": round(used / 2**20, 1), "state_file_mb": round(size / 2**20, 1),
            "evicted": evicted}


def run(clean_secs: float = 120.0, progress: Callable[[str], None] = print
        ) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bustap-detect-") as tmp:
        rows = attack_run(Path(tmp), progress)
        rows.append(clean_run(Path(tmp), clean_secs, progress))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean-secs", type=float, default=120.0,
                        help="how long the background runs alone (false alerts)")
    parser.add_argument("--keys", type=int, default=100_000, help="keys for the memory case")
    parser.add_argument("--only", choices=["quality", "memory"])
    args = parser.parse_args(argv)
    from bench.report import print_table

    if args.only != "memory":
        print_table("detection quality", run(args.clean_secs))
    if args.only != "quality":
        print_table("detector state", [state_memory(args.keys)])


if __name__ == "__main__":
    main()
