"""Alert latency: from the publish of a message that a rule matches to the
alert record written, under a steady load of other messages.

A publisher sends ``rate`` messages a second to a Mosquitto started for the
bench; every ``probe_every`` seconds one of them carries ``{"probe": N, "t":
publish time}``. bustap captures everything to JSON lines with a rule that
fires on each probe (one group per probe, so each one is a new alert). The
latency of a probe is the alert record's timestamp (stamped as it is
written) minus the publish time in the probe.

    python -m bench.alerts --rate 10000 --secs 10
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.brokers import Mosquitto  # noqa: E402

from bench.capture import BUSTAP, JET_EVENT  # noqa: E402

RULES = """
[detect]
throttle_secs = 0
[[rule]]
id = "latency_probe"
where = "payload.probe exists"
group_by = ["payload.probe"]
summary = "probe {payload.probe}"
"""

PUBLISHER = r"""
import asyncio, json, sys, time
from bustap.net.mqtt import ConnectOptions, MqttClient, PUBLISH, packet, _str

async def main(port, rate, secs, probe_every):
    c = MqttClient(ConnectOptions(host="127.0.0.1", port=port, client_id="bench-pub",
                                  version=4))
    await c.connect()
    proto = c.proto
    load = _str("/junos/events/syslog/SNMP_TRAP_LINK_DOWN")
    probe = _str("bench/probe")
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    start = time.time()
    sent = probes = 0
    next_probe = start + probe_every
    while (now := time.time()) < start + secs:
        for i in range(per_tick):
            proto.write(packet(PUBLISH << 4, load + (JET % (sent + i)).encode()))
        sent += per_tick
        if now >= next_probe:
            body = json.dumps({"probe": probes, "t": time.time()}).encode()
            proto.write(packet(PUBLISH << 4, probe + body))
            probes += 1
            sent += 1
            next_probe += probe_every
        delay = start + (sent / rate) - time.time()
        await asyncio.sleep(max(0.0, delay))
    await asyncio.sleep(0.5)
    await c.close()
    print(sent, probes, flush=True)

JET = sys.argv[5]
asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
"""


def _ts(text: str) -> float:
    from bustap.record import parse_timestamp

    return parse_timestamp(text).timestamp()


def run(rate: float = 10_000, secs: float = 10.0, probe_every: float = 0.1, *,
        progress: Callable[[str], None] = print) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bustap-bench-alerts-") as tmp:
        work = Path(tmp)
        rules = work / "rules.toml"
        rules.write_text(RULES)
        out = work / "out.jsonl"
        broker = Mosquitto(work / "mosq", extra="allow_anonymous true\n"
                           "max_queued_messages 0\n").start()
        try:
            cap = subprocess.Popen([*BUSTAP, "capture", broker.url, "-t", "#", "--rules",
                                    str(rules), "--alert-output", "console", "-o", str(out),
                                    "-W", str(secs + 4)], stderr=subprocess.DEVNULL,
                                   env={**__import__("os").environ,
                                        "BUSTAP_STATE_DIR": str(work / "state")})
            deadline = time.monotonic() + 10
            while not (out.exists() and out.stat().st_size) and time.monotonic() < deadline:
                time.sleep(0.02)
            progress(f"alert latency: {rate:,.0f} msg/s for {secs:g}s")
            pub = subprocess.run([sys.executable, "-c", PUBLISHER, str(broker.port), str(rate),
                                  str(secs), str(probe_every), JET_EVENT.replace("%08d", "%d")],
                                 capture_output=True, text=True, check=True)
            sent, probes = (int(x) for x in pub.stdout.split())
            cap.wait(secs + 30)
        finally:
            broker.stop()
        recs = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    by_seq = {r["seq"]: r for r in recs}
    latencies = []
    for a in recs:
        if a.get("event_type") == "alert" and a.get("rule") == "latency_probe" \
                and a.get("state") == "firing":
            probe = by_seq.get(a["evidence"][0]) if a.get("evidence") else None
            if probe is not None:
                latencies.append((_ts(a["timestamp"]) - float(probe["payload"]["t"])) * 1000)
    received = sum(r.get("kind") == "message" for r in recs)
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    return [{"case": f"alert latency at {rate:,.0f} msg/s", "tool": "bustap capture --rules",
             "messages": sent, "received": received, "lost": sent - received,
             "probes": probes, "alerts": len(latencies), "p50_ms": pct(0.50),
             "p99_ms": pct(0.99), "max_ms": round(latencies[-1], 1) if latencies else None,
             "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None}]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10_000, help="messages per second")
    parser.add_argument("--secs", type=float, default=10.0, help="how long to publish")
    parser.add_argument("--probe-every", type=float, default=0.1, metavar="SECS")
    args = parser.parse_args(argv)
    from bench.report import print_table

    print_table("alerts", run(args.rate, args.secs, args.probe_every))


if __name__ == "__main__":
    main()
