"""A fleet at an idle trickle: one ``bustap capture`` holding N broker
connections (one Mosquitto with a listener on each of 127.0.0.1 ...
127.0.0.N, so each connection is its own "router"), each subscribed to its own
router's topics, with a few messages a second spread over them. Reports the
time until every broker is connected, bustap's peak RSS and its CPU seconds
per minute while idle.

    python -m bench.fleet --brokers 200 --secs 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.brokers import free_port, stop_process, wait_port  # noqa: E402

from bench.capture import _hwm_mb  # noqa: E402

BUSTAP = [sys.executable, "-m", "bustap.cli"]
TARGET_RSS_MB = 300


def _cpu_secs(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _inits(path: Path) -> int:
    try:
        return path.read_bytes().count(b'"event_type":"log_init"')
    except OSError:
        return 0


async def _trickle(port: int, brokers: int, secs: float, rate: float) -> int:
    from bustap.net.mqtt import ConnectOptions, MqttClient

    client = MqttClient(ConnectOptions("127.0.0.1", port, client_id="bench-trickle"))
    await client.connect()
    sent = 0
    deadline = time.monotonic() + secs
    try:
        while time.monotonic() < deadline:
            k = sent % brokers + 1
            await client.publish(f"rtr/{k}/events", b'{"jet-event":{"event-id":"IDLE",'
                                 b'"hostname":"rtr-%d","severity":"info"}}' % k)
            sent += 1
            await asyncio.sleep(1 / rate)
    finally:
        await client.close()
    return sent


def run(brokers: int = 200, secs: float = 30.0, rate: float = 5.0) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="bustap-fleet-"))
    port = free_port()
    listeners = "".join(f"listener {port} 127.0.0.{k}\n" for k in range(1, brokers + 1))
    conf = work / "mosquitto.conf"
    conf.write_text(f"user root\npersistence false\nallow_anonymous true\n"
                    f"per_listener_settings false\n{listeners}")
    broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sources = work / "fleet.txt"
    sources.write_text("".join(f"mqtt://127.0.0.{k}:{port} topics=rtr/{k}/#\n"
                               for k in range(1, brokers + 1)))
    out = work / "out.jsonl"
    try:
        wait_port(port, proc=broker)
        t0 = time.monotonic()
        tap = subprocess.Popen([*BUSTAP, "capture", "--sources", str(sources), "-o", str(out)],
                               stderr=subprocess.DEVNULL)
        while _inits(out) < brokers and tap.poll() is None and time.monotonic() - t0 < 120:
            time.sleep(0.05)
        connected = _inits(out)
        connect_secs = time.monotonic() - t0
        cpu0 = _cpu_secs(tap.pid)
        sent = asyncio.run(_trickle(port, brokers, secs, rate))
        time.sleep(1.0)
        cpu = _cpu_secs(tap.pid) - cpu0
        rss = _hwm_mb(tap.pid)
        tap.terminate()
        tap.wait(30)
        received = out.read_bytes().count(b'"kind":"message"')
    finally:
        stop_process(broker)
    return [{"case": f"{brokers} brokers, idle trickle", "connected": connected,
             "connect_secs": round(connect_secs, 2), "sent": sent, "received": received,
             "cpu_secs_per_min": round(cpu / (secs + 1) * 60, 2),
             "peak_rss_mb": round(rss, 1), "target_rss_mb": TARGET_RSS_MB}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", type=int, default=200)
    parser.add_argument("--secs", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=5.0, help="messages a second in all")
    args = parser.parse_args()
    from bench.report import print_table

    print_table("fleet", run(args.brokers, args.secs, args.rate))


if __name__ == "__main__":
    main()
