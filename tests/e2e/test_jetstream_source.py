"""``jetstream://host/STREAM?durable=NAME``: a durable pull consumer acked after the
sinks have the records; kill -9 mid-stream loses nothing."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import duckdb
import nats
import pytest
from tests.conftest import Bustap, read_records, run_bustap
from tests.fixtures.brokers import NatsServer
from tests.fixtures.run import Tail, start, wait

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]
N = 100_000


@pytest.fixture
def js_server(nats_factory: Callable[..., NatsServer], tmp_path: Path) -> NatsServer:
    return nats_factory(args=("-js", "-sd", str(tmp_path / "jsdata")))


async def fill(server: NatsServer, stream: str, n: int, first: int = 0,
               body: bytes = b"%d") -> None:
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    try:
        await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    for lo in range(first, first + n, 1000):
        for i in range(lo, min(lo + 1000, first + n)):
            await js.publish_async(f"{stream.lower()}.{i % 7}", body % i)
        await js.publish_async_completed()
    await nc.close()


async def ack_state(server: NatsServer, stream: str, durable: str) -> tuple[int, int]:
    nc = await nats.connect(server.url)
    info = await nc.jetstream().consumer_info(stream, durable)
    await nc.close()
    return info.num_ack_pending, info.num_pending


def payloads(path: Path) -> Counter[int]:
    return Counter(int(r["payload"]) for r in read_records(path) if r.get("kind") == "message")


@pytest.mark.xdist_group("kill9-scale")  # 100k through DuckDB: not beside the MQTT one
def test_kill_9_of_run_mid_100k_then_restart_loses_nothing(
        js_server: NatsServer, tmp_path: Path) -> None:
    """The issue's kill -9 case from a JetStream source: ``bustap run`` on a
    durable consumer into DuckDB, killed a third of the way through 100k
    messages and started again. Loss zero, by the numbers in the payloads; the
    duplicates (what was delivered but not acked at the kill) counted, and each
    of them a redelivery."""
    t0 = time.monotonic()
    asyncio.run(fill(js_server, "EV", N, body=b'{"n":%d}'))
    filled = time.monotonic() - t0
    db = tmp_path / "tap.duckdb"
    progress = tmp_path / "progress.jsonl"  # read while DuckDB's file is locked
    cfg = tmp_path / "run.toml"
    # a short ack wait: what the killed collector had in flight comes back soon
    cfg.write_text(f'name = "k9js"\n[[source]]\nurl = "jetstream://127.0.0.1:{js_server.port}'
                   f'/EV?durable=tap&ack_wait_secs=2"\n\n[[sink]]\nurl = "{db}"\n\n'
                   f'[[sink]]\nurl = "{progress}"\n')
    tail = Tail(progress)
    run = start(cfg, tmp_path)
    try:
        wait(lambda: (tail.poll(), tail.messages >= N // 3)[1], "a third received", run,
             tmp_path, 60)
        run.send_signal(signal.SIGKILL)  # no flush, no acks of what is in flight
        run.wait()
        killed_at = tail.messages
        run = start(cfg, tmp_path)
        # every message acknowledged: each is on both sinks (acks follow the sinks)
        wait(lambda: asyncio.run(ack_state(js_server, "EV", "tap")) == (0, 0),
             "every message acked", run, tmp_path, 90, every=0.5)
        run.send_signal(signal.SIGTERM)
        assert run.wait(30) == 0, (tmp_path / "run.stderr").read_text()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    con = duckdb.connect(str(db), read_only=True)
    total, distinct, low, high, redelivered = con.execute(
        "SELECT count(*), count(DISTINCT payload->>'n'), min((payload->>'n')::INT), "
        "max((payload->>'n')::INT), count(*) FILTER ((properties->>'num_delivered')::INT > 1) "
        "FROM records WHERE kind = 'message'").fetchone()  # type: ignore[misc]
    con.close()
    duplicates = total - distinct
    print(f"filled {N} in {filled:.1f}s; killed after {killed_at} messages; stored {total}, "
          f"{duplicates} duplicates, {redelivered} redelivered; "
          f"{time.monotonic() - t0:.1f}s in all")
    assert (distinct, low, high) == (N, 0, N - 1)  # loss zero
    assert killed_at < N, "killed too late to test anything"
    # at-least-once: only what was delivered but not yet acked at the kill comes again
    assert duplicates <= N // 4 and redelivered >= duplicates


def test_two_collectors_on_one_durable_split_the_stream(
        js_server: NatsServer, bustap_bg: BgFactory) -> None:
    asyncio.run(fill(js_server, "SP", 10))  # stream exists
    url = f"jetstream://127.0.0.1:{js_server.port}/SP?durable=shared"
    a = bustap_bg("capture", url, out="a.jsonl")
    b = bustap_bg("capture", url, out="b.jsonl")
    a.wait_ready()
    b.wait_ready()
    asyncio.run(fill(js_server, "SP", 5000, first=10))
    total = 5010

    def both() -> int:
        return len(set(payloads(a.out)) | set(payloads(b.out)))

    deadline = time.monotonic() + 30
    while both() < total and time.monotonic() < deadline:
        time.sleep(0.1)
    a.stop()
    b.stop()
    pa, pb = payloads(a.out), payloads(b.out)
    assert set(pa) | set(pb) == set(range(total))
    assert pa and pb  # both took a share
    assert sum(pa.values()) + sum(pb.values()) == total  # acked in time: no redelivery


def test_missing_stream_and_bad_urls_fail_at_start(js_server: NatsServer) -> None:
    r = run_bustap("capture", f"jetstream://127.0.0.1:{js_server.port}/NOPE?durable=x",
                   "-W", "5")
    assert r.returncode == 2 and "no stream 'NOPE'" in r.stderr
    r = run_bustap("capture", f"jetstream://127.0.0.1:{js_server.port}/?durable=x")
    assert r.returncode == 2 and "needs a stream" in r.stderr
    r = run_bustap("capture", f"jetstream://127.0.0.1:{js_server.port}/S", "-t", "a.>",
                   "-t", "b.>")
    assert r.returncode == 2 and "one filter subject" in r.stderr
