"""Capture throughput and memory, side by side with the tools users have today.

Each case runs one subscriber against a broker started for the bench (so the
machine's own broker's traffic does not interfere), publishes N messages with
the broker's own fast client, and measures from the first publish to the
subscriber's exit after the N-th message: the end-to-end rate, the messages
lost, and the subscriber's peak RSS (from wait4's rusage).

    python -m bench.capture --n 200000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.brokers import Mosquitto, NatsServer, wait_port  # noqa: E402

BUSTAP = [sys.executable, "-m", "bustap.cli"]

# A Junos JET event as a router sends it, compacted to one line: 438 bytes.
JET_EVENT = (
    '{"jet-event":{"event-id":"SNMP_TRAP_LINK_DOWN","hostname":"vmx4","time":'
    '"2016-08-28-09:30:51","severity":"warn","facility":"daemon","process-id":4086,'
    '"process-name":"mib2d","message":"SNMP_TRAP_LINK_DOWN: ifIndex 529, ifAdminStatus '
    'down(2), ifOperStatus down(2), ifName ge-0/0/1.0","attributes":{"snmp-interface-index":'
    '"529","admin-status":"down(2)","operational-status":"down(2)","interface-name":'
    '"ge-0/0/1.0"},"seq":"%08d"}}')


@dataclass
class Result:
    case: str
    tool: str
    messages: int
    received: int
    secs: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.received / self.secs if self.secs > 0 else 0.0

    def row(self) -> dict[str, Any]:
        return {"case": self.case, "tool": self.tool, "messages": self.messages,
                "received": self.received, "lost": self.messages - self.received,
                "secs": round(self.secs, 3), "rate": round(self.rate),
                "peak_rss_mb": round(self.peak_rss_mb, 1)}


def _hwm_mb(pid: int) -> float:
    """The process's peak RSS so far (VmHWM). wait4's ru_maxrss is no use here:
    Linux carries the parent's high-water mark into the child across exec."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[float, float]:
    """Wait for the process; return (exit time, peak RSS in MB: the process's
    plus its worker processes' peaks)."""
    deadline = time.monotonic() + timeout
    peak = 0.0
    workers: dict[int, float] = {}
    while True:
        for child in _children(proc.pid):
            workers[child] = max(workers.get(child, 0.0), _hwm_mb(child))
        peak = max(peak, _hwm_mb(proc.pid) + sum(workers.values()))
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return time.monotonic(), peak
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return time.monotonic(), peak
        time.sleep(0.005)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))


def _count_messages(path: Path) -> int:
    if path.suffix == ".duckdb":
        import duckdb

        if not path.exists():
            return 0
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute("SELECT count(*) FROM records WHERE kind = 'message'").fetchone()
            return int(row[0]) if row else 0
    if not path.exists():
        return 0
    n = 0
    with path.open("rb") as f:
        for line in f:
            n += b'"kind":"message"' in line
    return n


def _wait_ready(out: Path, timeout: float = 10.0) -> None:
    """bustap writes log_init once subscribed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and out.suffix != ".duckdb" and out.stat().st_size:
            return
        if out.suffix == ".duckdb" and out.exists():
            time.sleep(0.5)
            return
        time.sleep(0.02)
    time.sleep(0.5)


# --- MQTT ---------------------------------------------------------------------

def _lines(path: Path, n: int) -> Path:
    if not path.exists():
        with path.open("w") as f:
            for start in range(0, n, 10_000):
                f.write("".join(JET_EVENT % i + "\n" for i in range(start, min(n, start + 10_000))))
    return path


MQTT_PUB = r"""
import asyncio, sys
from bustap.net.mqtt import ConnectOptions, MqttClient, PUBLISH, packet, _str
import struct

async def main(port, qos, path, topic):
    # mosquitto_pub -l waits for each PUBACK at QoS 1 (about 600 msg/s here):
    # this publisher keeps up to 1000 QoS 1 messages in flight instead.
    c = MqttClient(ConnectOptions(host="127.0.0.1", port=port, client_id="bench-pub",
                                  version=4))
    await c.connect()
    proto = c.proto
    window = 1000
    pending = {}
    done = asyncio.Event()
    t = _str(topic)
    pid = 0
    sem = asyncio.Semaphore(window)
    def acked(f, sem=sem):
        sem.release()
    with open(path, "rb") as f:
        for line in f:
            payload = line.rstrip(b"\n")
            if qos == 0:
                proto.write(packet(PUBLISH << 4, t + payload))
                if proto.transport.get_write_buffer_size() > 4_000_000:
                    await asyncio.sleep(0.001)
                continue
            await sem.acquire()
            pid = pid % 65535 + 1
            fut = asyncio.get_running_loop().create_future()
            fut.add_done_callback(acked)
            proto.acks[pid] = fut
            proto.write(packet((PUBLISH << 4) | 2, t + struct.pack("!H", pid) + payload))
    for _ in range(window):
        await sem.acquire()
    await c.close()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]))
"""


def _publisher(port: int, qos: int, lines: Path, topic: str) -> list[str]:
    if qos == 0:
        return ["mosquitto_pub", "-p", str(port), "-t", topic, "-l"]
    return [sys.executable, "-c", MQTT_PUB, str(port), str(qos), str(lines), topic]

#: bustap with decoding and encoding in two worker processes (capture --workers 2)
WORKERS = "bustap-w2"
#: bustap without the alert engine (capture --no-detect): detection's own cost
NODETECT = "bustap-nodetect"


def _workers(tool: str) -> list[str]:
    return {WORKERS: ["--workers", "2"], NODETECT: ["--no-detect"]}.get(tool, [])


def _name(tool: str, sink: str) -> str:
    return f"bustap -> {sink}" + {WORKERS: " --workers 2", NODETECT: " --no-detect"}.get(
        tool, "")


def mqtt_case(broker: Mosquitto, work: Path, n: int, qos: int, tool: str,
              sink: str = "jsonl") -> Result:
    lines = _lines(work / "jet.lines", n)
    out = work / f"{tool}-{sink}-q{qos}.{'duckdb' if sink == 'duckdb' else 'out'}"
    for p in (out, out.with_suffix(".out.wal"), Path(str(out) + ".wal")):
        p.unlink(missing_ok=True)
    topic = "/junos/events/syslog/SNMP_TRAP_LINK_DOWN"
    if tool == "mosquitto_sub":
        f = out.open("wb")
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-t", "#", "-q",
                                str(qos), "-C", str(n)], stdout=f)
        time.sleep(0.5)
    else:
        f = None
        target = str(out) if sink == "duckdb" else str(out.with_suffix(".jsonl"))
        out = Path(target)
        sub = subprocess.Popen([*BUSTAP, "capture", *_workers(tool), broker.url, "-t", "#",
                                "--qos", str(qos),
                                "-C", str(n), "-o", target])
        _wait_ready(out)
    t0 = time.monotonic()
    with lines.open("rb") as stdin:
        pub = subprocess.Popen(_publisher(broker.port, qos, lines, topic), stdin=stdin)
        t1, rss = _wait(sub, timeout=max(60.0, n / 5000))
        pub.wait()
    if f:
        f.close()
    received = _count_lines(out) if tool == "mosquitto_sub" else _count_messages(out)
    name = tool if tool == "mosquitto_sub" else _name(tool, sink)
    return Result(f"mqtt qos{qos}", name, n, received, t1 - t0, rss)


# --- NATS ---------------------------------------------------------------------

RAW_NATS_SUB = """
import asyncio, sys, nats
async def main(url, n, path):
    nc = await nats.connect(url)
    done = asyncio.Event()
    count = 0
    f = open(path, "wb")
    async def cb(msg):
        nonlocal count
        f.write(msg.data + b"\\n")
        count += 1
        if count >= n:
            done.set()
    await nc.subscribe(">", cb=cb, pending_msgs_limit=1_000_000, pending_bytes_limit=-1)
    await nc.flush()
    print("ready", flush=True)
    await done.wait()
    f.close()
    await nc.close()
asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
"""

NATS_PUB = """
import asyncio, sys, nats
async def main(url, n, payload):
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    subject = "hm.agent.heartbeat.367422e1-7204-4145-ba70-7c8480b54f50"
    for i in range(n):
        await nc.publish(subject, payload)
    await nc.flush(timeout=60)
    await nc.close()
asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()))
"""


def nats_case(server: NatsServer, work: Path, n: int, tool: str, sink: str = "jsonl") -> Result:
    from tests.fixtures.payloads import BOSH_HEARTBEAT

    out = work / f"nats-{tool}-{sink}.{'duckdb' if sink == 'duckdb' else 'jsonl'}"
    out.unlink(missing_ok=True)
    Path(str(out) + ".wal").unlink(missing_ok=True)
    if tool == "nats-py":
        sub = subprocess.Popen([sys.executable, "-c", RAW_NATS_SUB, server.url, str(n),
                                str(out)], stdout=subprocess.PIPE)
        assert sub.stdout is not None
        sub.stdout.readline()
    else:
        sub = subprocess.Popen([*BUSTAP, "capture", *_workers(tool), server.url, "-t", ">",
                                "-C", str(n),
                                "-o", str(out)])
        _wait_ready(out)
    t0 = time.monotonic()
    pub = subprocess.Popen([sys.executable, "-c", NATS_PUB, server.url, str(n),
                            BOSH_HEARTBEAT])
    t1, rss = _wait(sub, timeout=max(60.0, n / 5000))
    pub.wait()
    received = _count_lines(out) if tool == "nats-py" else _count_messages(out)
    name = "nats-py raw" if tool == "nats-py" else _name(tool, sink)
    return Result("nats", name, n, received, t1 - t0, rss)


def stalled_sink_case(broker: Mosquitto, work: Path, n: int) -> Result:
    """A burst into bustap whose sink (stdout into a pipe nobody reads) is
    stalled: memory must stay bounded, pushing back on the broker instead."""
    lines = _lines(work / "burst.lines", n)
    r, w = os.pipe()
    sub = subprocess.Popen([*BUSTAP, "capture", broker.url, "-t", "#", "-C", str(n)],
                           stdout=w)
    os.close(w)
    time.sleep(1.0)
    t0 = time.monotonic()
    with lines.open("rb") as stdin:
        pub = subprocess.Popen(["mosquitto_pub", "-p", str(broker.port), "-t", "burst", "-l"],
                               stdin=stdin)
        try:
            pub.wait(timeout=max(30.0, n / 20000))
        except subprocess.TimeoutExpired:
            pub.kill()
            pub.wait()
    time.sleep(2.0)  # let bustap fill whatever it buffers while stalled
    sub.terminate()
    t1, rss = _wait(sub, 10)
    os.close(r)
    return Result("stalled sink burst", "bustap -> blocked stdout", n, 0, t1 - t0, rss)


def run(n: int = 200_000, *, cases: set[str] | None = None, duckdb: bool = True,
        progress: Callable[[str], None] = print) -> list[dict[str, Any]]:
    if not shutil.which("mosquitto_sub"):
        raise SystemExit("mosquitto-clients are needed: run `make setup`")
    rows: list[dict[str, Any]] = []
    sinks = ["jsonl", "duckdb"] if duckdb else ["jsonl"]
    with tempfile.TemporaryDirectory(prefix="bustap-bench-") as tmp:
        work = Path(tmp)
        # Broker defaults, except the offline/outgoing queue limit, so that a
        # slow subscriber shows as a lower rate, not as broker-side drops.
        broker = Mosquitto(work / "mosq", extra="allow_anonymous true\n"
                           "max_queued_messages 0\n").start()
        try:
            for qos in (0, 1):
                if cases and f"mqtt{qos}" not in cases:
                    continue
                tools = [("mosquitto_sub", "-"), *[("bustap", s) for s in sinks]]
                if qos == 0:
                    tools += [(NODETECT, "jsonl"), *[(WORKERS, s) for s in sinks]]
                for tool, sink in tools:
                    progress(f"mqtt qos{qos}: {tool} {sink}")
                    rows.append(mqtt_case(broker, work, n, qos, tool, sink).row())
            if not cases or "burst" in cases:
                progress("stalled sink burst")
                rows.append(stalled_sink_case(broker, work, max(n * 5, 1_000_000)).row())
        finally:
            broker.stop()
        if not cases or "nats" in cases:
            # A server that buffers for a slow subscriber instead of cutting it
            # off, so that the case measures speed (as for Mosquitto above).
            server = NatsServer(work / "nats", config_text='max_pending: 1073741824\n'
                                'write_deadline: "120s"\n').start()
            wait_port(server.port)
            try:
                for tool, sink in [("nats-py", "-"), *[("bustap", s) for s in sinks],
                                   (NODETECT, "jsonl"), *[(WORKERS, s) for s in sinks]]:
                    progress(f"nats: {tool} {sink}")
                    rows.append(nats_case(server, work, n, tool, sink).row())
            finally:
                server.stop()
    baseline = {}
    for row in rows:
        if row["tool"] in ("mosquitto_sub", "nats-py raw"):
            baseline[row["case"]] = row["rate"]
    for row in rows:
        base = baseline.get(row["case"])
        row["ratio"] = round(row["rate"] / base, 2) if base else None
    rows += detection_rows(rows)
    return rows


def detection_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Capture with the alert engine on (the default) as a ratio of capture
    with --no-detect, per case, from the rows of the same run."""
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        on = next((r for r in rows if r["case"] == case and r["tool"] == "bustap -> jsonl"), None)
        off = next((r for r in rows if r["case"] == case
                    and r["tool"] == "bustap -> jsonl --no-detect"), None)
        if on and off and off["rate"]:
            out.append({"case": case, "tool": "detection on / off (jsonl)",
                        "messages": on["messages"], "received": on["received"],
                        "lost": on["lost"], "rate": on["rate"],
                        "ratio": round(on["rate"] / off["rate"], 2)})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="messages per case")
    parser.add_argument("--cases", help="comma list of mqtt0,mqtt1,nats,burst (default all)")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB sink cases")
    args = parser.parse_args(argv)
    rows = run(args.n, cases=set(args.cases.split(",")) if args.cases else None,
               duckdb=not args.no_duckdb)
    from bench.report import print_table

    print_table("capture", rows)


if __name__ == "__main__":
    main()
