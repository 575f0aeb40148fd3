"""Records into an R3 JetStream stream on a 3-node cluster started on loopback;
a node stopped mid-run loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from tests.fixtures.brokers import NatsServer, free_port

from bustap.record import Writer
from bustap.sinks import RecordBatch, make_sink
from bustap.spool import Spool

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(nats_factory: Callable[..., NatsServer], tmp_path: Path) -> list[NatsServer]:
    routes = [free_port() for _ in range(3)]
    urls = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
    nodes = []
    for i, port in enumerate(routes):
        conf = (f'server_name: n{i}\njetstream {{ store_dir: "{tmp_path / f"js{i}"}" }}\n'
                f"cluster {{ name: bt\n listen: 127.0.0.1:{port}\n routes: [{urls}] }}\n")
        nodes.append(nats_factory(conf, name=f"n{i}"))
    return nodes


async def wait_for_meta_leader(server: NatsServer) -> None:
    nc = await nats.connect(server.url)
    js = nc.jetstream(timeout=2)
    deadline = time.monotonic() + 20
    while True:
        try:
            await js.account_info()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)
    await nc.close()


async def test_r3_stream_keeps_every_record_when_a_node_stops(
        cluster: list[NatsServer], tmp_path: Path) -> None:
    await wait_for_meta_leader(cluster[0])
    sink = make_sink(f"jetstream://127.0.0.1:{cluster[0].port}/TAPS?subject=taps.{{kind}}"
                     "&create=true&replicas=3")
    spool = Spool(sink, directory=tmp_path / "spool", backoff_initial_secs=0.2,
                  backoff_max_secs=1.0)
    await spool.open()
    w = Writer("cluster")
    for i in range(20):
        if i == 5:
            cluster[2].stop()  # R3 keeps a quorum with two nodes
        await spool.write(RecordBatch([w.new("log", "test", kind="message", payload=n)
                                       for n in range(i * 100, (i + 1) * 100)]))
    for _ in range(200):
        if not spool.backlog_bytes:
            break
        await asyncio.sleep(0.1)
    await spool.aclose()
    nc = await nats.connect(cluster[1].url)
    js = nc.jetstream()
    info = await js.stream_info("TAPS")
    assert info.config.num_replicas == 3
    assert info.state.messages == 2000
    psub = await js.pull_subscribe("taps.>", durable="check", stream="TAPS")
    got: list[Any] = []
    deadline = time.monotonic() + 30
    while len(got) < 2000 and time.monotonic() < deadline:
        # the new consumer's leader is elected on a cluster missing a node: a pull may
        # time out meanwhile
        with contextlib.suppress(nats.errors.TimeoutError):
            batch = await psub.fetch(500, timeout=2)
            for m in batch:
                await m.ack()  # the consumer hands out at most 1000 unacked
            got += batch
    await nc.close()
    assert [orjson.loads(m.data)["payload"] for m in got] == list(range(2000))
