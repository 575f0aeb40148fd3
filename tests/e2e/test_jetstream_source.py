"""``jetstream://host/STREAM?durable=NAME``: a durable pull consumer acked after the
sinks have the records; kill -9 mid-stream loses nothing."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import nats
import pytest
from tests.conftest import Bustap, read_records, run_bustap
from tests.fixtures.brokers import NatsServer

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]
N = 20_000


@pytest.fixture
def js_server(nats_factory: Callable[..., NatsServer], tmp_path: Path) -> NatsServer:
    return nats_factory(args=("-js", "-sd", str(tmp_path / "jsdata")))


async def fill(server: NatsServer, stream: str, n: int, first: int = 0) -> None:
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    try:
        await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    for start in range(first, first + n, 1000):
        for i in range(start, min(start + 1000, first + n)):
            await js.publish_async(f"{stream.lower()}.{i % 7}", str(i).encode())
        await js.publish_async_completed()
    await nc.close()


async def ack_state(server: NatsServer, stream: str, durable: str) -> tuple[int, int]:
    nc = await nats.connect(server.url)
    info = await nc.jetstream().consumer_info(stream, durable)
    await nc.close()
    return info.num_ack_pending, info.num_pending


def payloads(path: Path) -> Counter[int]:
    return Counter(int(r["payload"]) for r in read_records(path) if r.get("kind") == "message")


def test_kill_9_mid_stream_then_restart_loses_nothing(
        js_server: NatsServer, bustap_bg: BgFactory) -> None:
    asyncio.run(fill(js_server, "EV", N))
    # a short ack wait: what the killed collector had in flight comes back soon
    url = f"jetstream://127.0.0.1:{js_server.port}/EV?durable=tap&ack_wait_secs=2"
    b = bustap_bg("capture", url)
    b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) >= N // 4, 30)
    b.proc.send_signal(signal.SIGKILL)  # no flush, no acks of what is in flight
    b.proc.wait()
    first = sum(payloads(b.out).values())
    assert first < N, "killed too late to test anything"
    b2 = bustap_bg("capture", url, out="out.jsonl")  # same file: append
    b2.wait_for(lambda rs: len({r.get("payload") for r in rs if r.get("kind") == "message"})
                >= N, 60)
    assert b2.stop() == 0  # SIGTERM: drains, acks what it wrote
    got = payloads(b2.out)
    assert set(got) == set(range(N))  # loss zero
    duplicates = sum(got.values()) - N
    # at-least-once: only what was delivered but not yet acked at the kill comes again
    assert duplicates <= 2 * 1000
    redelivered = [r for r in read_records(b2.out)
                   if r.get("kind") == "message" and r["properties"]["num_delivered"] > 1]
    assert len(redelivered) >= duplicates
    assert asyncio.run(ack_state(js_server, "EV", "tap")) == (0, 0)


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

    import time

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
