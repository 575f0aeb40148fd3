"""Log lines parsed per second, against ``wc -l`` on the same file.

The logs are made by real brokers under load and cached in bench/out/:
Mosquitto with ``log_type all`` while ``mosquitto_pub -l`` publishes and a
``#`` subscriber receives (a ``Received PUBLISH`` and a ``Sending PUBLISH``
line per message, as on a busy debug-logging broker), and nats-server
``-DV`` while nats-py publishes to a subscriber.

    python -m bench.logparse [--messages 600000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"
ROOT = Path(__file__).parent.parent


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


def mosquitto_log(messages: int) -> Path:
    path = OUT / f"mosquitto-all-{messages}.log"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / "mosq-gen"
    work.mkdir(exist_ok=True)
    tmp = work / "mosquitto.log"
    tmp.unlink(missing_ok=True)
    port = _free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"user root\npersistence false\nlog_dest file {tmp}\nlog_type all\n"
                    f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    "max_queued_messages 0\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                               str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", "#", "-i", "bench-sub"],
                               stdout=subprocess.DEVNULL)
        time.sleep(0.3)
        payload = b"".join(b'{"n":%d,"temp":21.5}\n' % i for i in range(messages))
        subprocess.run(["mosquitto_pub", "-p", str(port), "-t", "sensors/bench/temp", "-l",
                        "-i", "bench-pub"], input=payload, check=True)
        for i in range(200):  # connects and disconnects between the publishes
            subprocess.run(["mosquitto_pub", "-p", str(port), "-t", f"devices/{i}", "-m", "x",
                            "-i", f"dev-{i}"], check=True)
        time.sleep(1.0)
        sub.terminate()
        sub.wait()
    finally:
        broker.terminate()
        broker.wait()
    tmp.rename(path)
    return path


def nats_log(messages: int) -> Path:
    path = OUT / f"nats-dv-{messages}.log"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / "nats-gen.log"
    tmp.unlink(missing_ok=True)
    port = _free_port()
    binary = str(Path(sys.executable).parent / "nats-server")
    if not os.path.exists(binary):
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    server = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port), "-DV", "-l",
                               str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)

        async def drive() -> None:
            import nats

            sub = await nats.connect(f"nats://127.0.0.1:{port}", name="bench-sub")
            await sub.subscribe("sensors.>")
            pub = await nats.connect(f"nats://127.0.0.1:{port}", name="bench-pub")
            for i in range(messages):
                await pub.publish(f"sensors.{i % 50}.temp", b'{"temp":21.5}')
                if i % 5000 == 0:
                    await pub.flush()
            await pub.flush()
            await asyncio.sleep(0.5)
            await pub.close()
            await sub.close()

        asyncio.run(drive())
    finally:
        server.terminate()
        server.wait()
    tmp.rename(path)
    return path


def _row(case: str, lines: int, secs: float) -> dict[str, Any]:
    return {"case": case, "lines": lines, "secs": round(secs, 3),
            "rate": round(lines / secs) if secs > 0 else None}


def _parse(path: Path, fmt: str) -> tuple[int, float, int]:
    from bustap.logparse import make_parser

    t0 = time.perf_counter()
    text = path.read_bytes().decode("utf-8", "replace")
    lines = text.splitlines()
    parser = make_parser(fmt)
    records = parser.feed_many(lines) + parser.flush()
    secs = time.perf_counter() - t0
    return len(lines), secs, len(records)


def _wc(path: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    out = subprocess.run(["wc", "-l", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]), time.perf_counter() - t0


def _cli(path: Path, fmt: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bustap.cli", "logs", str(path), "--format", fmt,
                    "-o", "/dev/null"], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def run(messages: int = 1_500_000, nats_messages: int = 400_000) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for fmt, path in (("mosquitto", mosquitto_log(messages)), ("nats", nats_log(nats_messages))):
        n, secs = _wc(path)
        rows.append(_row(f"{fmt}: wc -l", n, secs))
        lines, secs, _ = _parse(path, fmt)
        rows.append(_row(f"{fmt}: parser (read+split+parse)", lines, secs))
        rows.append(_row(f"{fmt}: bustap logs -o /dev/null", lines, _cli(path, fmt)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1_500_000)
    ap.add_argument("--nats-messages", type=int, default=400_000)
    args = ap.parse_args()
    for row in run(args.messages, args.nats_messages):
        print(f"{row['case']:<42} {row['lines']:>10} lines {row['secs']:>8.3f}s "
              f"{row['rate'] or 0:>12,} lines/s")


if __name__ == "__main__":
    main()
