"""The issue's kill -9 case at scale: ``bustap run`` with an MQTT QoS 1
persistent session into DuckDB, 100k messages published, the collector
killed with SIGKILL mid-way and started again. Every message is in the store
(counted by the sequence numbers in the payloads); the duplicates the
redelivery of unacknowledged messages makes are counted, the loss is zero.

The publisher keeps 1,000 QoS 1 messages in flight (bench/capture.py's
MQTT_PUB): ``mosquitto_pub -l`` waits for each PUBACK and would take minutes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from tests.fixtures.brokers import Mosquitto
from tests.fixtures.run import Tail, start, wait

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("kill9-scale")]

N = 100_000

PUBLISHER = r"""
import asyncio, struct, sys
from bustap.net.mqtt import PUBLISH, ConnectOptions, MqttClient, _str, packet

async def main(port, n):
    c = MqttClient(ConnectOptions(host="127.0.0.1", port=port, client_id="k9-pub", version=4))
    await c.connect()
    proto, topic = c.proto, _str("k9/x")
    sem = asyncio.Semaphore(1000)
    pid = 0

    async def send(payload):
        nonlocal pid
        await sem.acquire()
        pid = pid % 65535 + 1
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda _f: sem.release())
        proto.acks[pid] = fut
        proto.write(packet((PUBLISH << 4) | 2, topic + struct.pack("!H", pid) + payload))

    for i in range(n):
        await send(b'{"n":%d}' % i)
    await send(b'"end"')  # after every other one in the session's queue
    for _ in range(1000):
        await sem.acquire()
    await c.close()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


def test_kill9_mid_100k_qos1_into_duckdb_loses_nothing(
        mosquitto_factory: object, tmp_path: Path) -> None:
    # the broker keeps what the session misses while bustap is down (and what
    # waits behind the in-flight window while it is up): all of it
    broker: Mosquitto = mosquitto_factory(  # type: ignore[operator]
        "allow_anonymous true\nmax_queued_messages 0\nmax_queued_bytes 0")
    db = tmp_path / "tap.duckdb"
    progress = tmp_path / "progress.jsonl"  # read while DuckDB's file is locked
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'name = "k9"\n[[source]]\nurl = "{broker.url}"\ntopics = ["k9/#"]\n'
                   f'qos = 1\nsession = "tap-k9"\n\n[[sink]]\nurl = "{db}"\n\n'
                   f'[[sink]]\nurl = "{progress}"\n')
    tail = Tail(progress)
    run = start(cfg, tmp_path)
    wait(lambda: (tail.poll(), tail.pos > 0)[1], "log_init", run, tmp_path, 20)
    pub = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(broker.port), str(N)])
    try:
        wait(lambda: (tail.poll(), tail.messages >= N // 3)[1], "a third received", run,
             tmp_path, 40)
        run.send_signal(signal.SIGKILL)  # no flush, no goodbye, no ack of what is in flight
        run.wait()
        killed_at = tail.messages
        run = start(cfg, tmp_path)
        wait(lambda: (tail.poll(), tail.ended)[1], "the end marker", run, tmp_path, 60)
        assert pub.wait(20) == 0
        run.send_signal(signal.SIGTERM)
        assert run.wait(30) == 0, (tmp_path / "run.stderr").read_text()
    finally:
        for proc in (pub, run):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    con = duckdb.connect(str(db), read_only=True)
    total, distinct, low, high = con.execute(
        "SELECT count(*), count(DISTINCT payload->>'n'), min((payload->>'n')::INT), "
        "max((payload->>'n')::INT) FROM records WHERE kind = 'message' AND topic = 'k9/x' "
        "AND payload->>'n' IS NOT NULL").fetchone()  # type: ignore[misc]
    con.close()
    duplicates = total - distinct
    print(f"killed after {killed_at} messages; stored {total}, {duplicates} duplicates")
    assert (distinct, low, high) == (N, 0, N - 1)  # loss zero
    assert killed_at < N and duplicates < N // 4  # the kill was mid-way; redeliveries only
