"""Records into an R3 JetStream stream on a 3-node cluster started on loopback;
a node stopped mid-run loses nothing. And the issue's scale-out case: two
``bustap run`` collectors split an MQTT 5 shared subscription and a NATS queue
group and write into the cluster through a URL naming its three servers; the
node their sinks are on (made the stream's leader too) is killed mid-run and
the stream still holds every message of both buses exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import nats
import orjson
import pytest
from nats.js import api
from tests.conftest import Bustap
from tests.fixtures.brokers import Mosquitto, NatsServer, free_port
from tests.fixtures.run import start

from bustap.net.mqtt import ConnectOptions, MqttClient
from bustap.record import Writer
from bustap.sinks import RecordBatch, make_sink
from bustap.spool import Spool

pytestmark = pytest.mark.e2e
T = TypeVar("T")


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


async def test_sinks_creating_one_stream_at_once_wait_for_its_leader(
        cluster: list[NatsServer]) -> None:
    """Two collectors starting together both create the stream; the one that finds
    it created has to wait for its leader, or its first batch gets no ack."""
    await wait_for_meta_leader(cluster[0])
    servers = ",".join(f"127.0.0.1:{n.port}" for n in cluster)

    async def first_write(name: str) -> None:
        sink = make_sink(f"jetstream://{servers}/RACE?subject=race.x&create=true&replicas=3")
        await sink.open()
        w = Writer(name)
        try:
            await sink.write(RecordBatch([w.new("log", "t", kind="message", payload=n)
                                          for n in range(10)]))
        finally:
            await sink.aclose()

    await asyncio.gather(first_write("a"), first_write("b"))
    nc = await nats.connect(cluster[1].url)
    info = await nc.jetstream().stream_info("RACE")
    await nc.close()
    assert info.state.messages == 20 and info.config.num_replicas == 3


# --- two collectors, two buses, one R3 stream, a node killed mid-run -------------

PER_BUS = 3000  # messages published on each bus
PACE_SECS = 12.0  # ... evenly over this long


def collector(name: str, tmp_path: Path, mqtt: Mosquitto, bus: NatsServer, sink: str
              ) -> subprocess.Popen[bytes]:
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(
        f'name = "{name}"\n'
        f'[[source]]\nurl = "{mqtt.url}"\ntopics = ["$share/taps/t/#"]\nqos = 1\n'
        f'session = "tap-{name}"\nprotocol_version = "5"\n\n'
        f'[[source]]\nurl = "{bus.url}"\ntopics = ["t.>"]\nqueue = "taps"\n\n'
        f'[[sink]]\nurl = "{sink}"\n')
    return start(cfg, tmp_path, name)


async def publish_mqtt(broker: Mosquitto, n: int) -> None:
    """QoS 1, each PUBACK awaited: what the broker acknowledged is the broker's."""
    c = MqttClient(ConnectOptions(host="127.0.0.1", port=broker.port, client_id="cl-pub"))
    await c.connect()
    start = time.monotonic()
    for i in range(n):
        await c.publish("t/x", b'{"n":%d}' % i, qos=1)
        await asyncio.sleep(max(0.0, start + PACE_SECS * (i + 1) / n - time.monotonic()))
    await c.close()


async def publish_nats(bus: NatsServer, n: int) -> None:
    nc = await nats.connect(bus.url)
    start = time.monotonic()
    for i in range(n):
        await nc.publish("t.x", b'{"n":%d}' % i)
        if i % 25 == 24:
            await nc.flush()
            await asyncio.sleep(max(0.0, start + PACE_SECS * (i + 1) / n - time.monotonic()))
    await nc.flush()
    await nc.close()


async def stream_leader(js: Any, stream: str) -> str | None:
    info = await js.stream_info(stream)
    return info.cluster.leader if info.cluster else None


async def lead_from(nc: Any, js: Any, stream: str, node: str) -> str | None:
    """Ask the stream's leader to step down until ``node`` leads (the stepdown's
    preferred placement where the server knows it, chance elsewhere)."""
    body = orjson.dumps({"placement": {"preferred": node}})
    for _ in range(10):
        leader = await stream_leader(js, stream)
        if leader == node:
            break
        with contextlib.suppress(Exception):
            await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", body, timeout=5)
        for _ in range(40):  # the election
            await asyncio.sleep(0.25)
            with contextlib.suppress(Exception):
                if await stream_leader(js, stream) not in (None, leader):
                    break
    return await stream_leader(js, stream)


async def settled(call: Callable[[], Awaitable[T]], secs: float = 30) -> T:
    """``call()`` once the cluster answers: JetStream API requests time out while
    a leader is elected."""
    deadline = time.monotonic() + secs
    while True:
        try:
            return await call()
        except nats.errors.TimeoutError:
            if time.monotonic() > deadline:
                raise


def sink_connections(node: NatsServer) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/connz?limit=1000",
                                timeout=5) as r:
        conns = orjson.loads(r.read()).get("connections") or []
    return sum(str(c.get("name", "")).startswith("bustap sink jetstream://") for c in conns)


async def test_two_collectors_split_both_buses_into_r3_while_their_node_dies(
        cluster: list[NatsServer], mosquitto_factory: Callable[..., Mosquitto],
        nats_factory: Callable[..., NatsServer], tmp_path: Path) -> None:
    t0 = time.monotonic()
    # the source buses are not the cluster: core NATS is at-most-once, and what a
    # killed source node had not yet delivered would be lost by NATS, not bustap
    mqtt = mosquitto_factory("allow_anonymous true\nmax_queued_messages 0")
    bus = nats_factory(name="bus")
    await wait_for_meta_leader(cluster[0])
    n0, n1 = cluster[0], cluster[1]
    servers = ",".join(f"127.0.0.1:{n.port}" for n in cluster)
    sink = f"jetstream://{servers}/TAPS?subject=taps.{{protocol}}&create=true&replicas=3"
    watch = await nats.connect(n1.url)  # a node that stays
    js = watch.jetstream(timeout=5)
    inits: list[dict[str, Any]] = []

    async def on_record(m: Any) -> None:
        r = orjson.loads(m.data)
        if r.get("event_type") == "log_init":
            inits.append(r)

    await watch.subscribe("taps.>", cb=on_record)
    # both at once: each may find the stream missing and create it (create=true)
    procs = [collector(name, tmp_path, mqtt, bus, sink) for name in ("a", "b")]
    try:
        deadline = time.monotonic() + 20
        while len({(r["writer_id"], r["source"]) for r in inits}) < 4:  # 2 sources each
            assert all(p.poll() is None for p in procs), errors(tmp_path)
            assert time.monotonic() < deadline, f"not ready: {inits} {errors(tmp_path)}"
            await asyncio.sleep(0.1)
        # the first server of the list takes both sinks; make it the stream's leader
        # too: its death is then the worst case, failover and leader election at once
        assert sink_connections(n0) == 2
        leader = await lead_from(watch, js, "TAPS", "n0")
        pubs = asyncio.gather(publish_mqtt(mqtt, PER_BUS), publish_nats(bus, PER_BUS))
        await asyncio.sleep(PACE_SECS / 2)
        n0.proc.kill()  # kill -9 mid-run: no goodbye to the clients, no leader handover
        n0.proc.wait()
        killed_at = time.monotonic() - t0
        await pubs
        # the stream's leader and perhaps the meta leader are elected again
        info = await settled(lambda: js.stream_info("TAPS"))
        assert info.config.num_replicas == 3
        got: Counter[tuple[str, int]] = Counter()
        writers: dict[str, set[str]] = {"mqtt": set(), "nats": set()}
        # every message published is on its way once the publishers are done: wait
        # for the stream to have them all, then stop the collectors (drain, exit 0)
        deadline = time.monotonic() + 30
        seen = 0
        psub = await settled(lambda: js.pull_subscribe(
            "taps.*", durable="check", stream="TAPS",
            config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE)))
        while len(got) < 2 * PER_BUS and time.monotonic() < deadline:
            with contextlib.suppress(nats.errors.TimeoutError):
                for m in await psub.fetch(1000, timeout=1):
                    seen += 1
                    r = orjson.loads(m.data)
                    if r.get("kind") == "message":
                        got[(r["protocol"], r["payload"]["n"])] += 1
                        writers[r["protocol"]].add(r["writer_id"])
        for p in procs:
            p.send_signal(signal.SIGTERM)
        assert [p.wait(20) for p in procs] == [0, 0], errors(tmp_path)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    # what the collectors wrote while stopping: read to the end of the stream
    info = await settled(lambda: js.stream_info("TAPS"))
    while seen < info.state.messages:
        for m in await psub.fetch(1000, timeout=5):
            seen += 1
            r = orjson.loads(m.data)
            if r.get("kind") == "message":
                got[(r["protocol"], r["payload"]["n"])] += 1
    await watch.close()
    print(f"stream leader n0 at the kill: {leader == 'n0'} ({leader}); killed at "
          f"{killed_at:.1f}s; {info.state.messages} records in the stream; "
          f"{time.monotonic() - t0:.1f}s in all")
    for proto in ("mqtt", "nats"):
        numbers = {n for (p, n) in got if p == proto}
        assert numbers == set(range(PER_BUS)), (proto, PER_BUS - len(numbers), "lost")
        # both collectors took a share of each bus
        assert writers[proto] == {"bustap/a", "bustap/b"}, (proto, writers[proto])
    assert set(got.values()) == {1}, sorted(k for k, v in got.items() if v > 1)[:10]


def errors(tmp_path: Path) -> str:
    return "\n".join(f"{p.name}: {p.read_text()[-3000:]}" for p in tmp_path.glob("*.stderr"))


def test_jetstream_source_on_a_cluster_url_survives_its_node(
        cluster: list[NatsServer], bustap_bg: Callable[..., Bustap]) -> None:
    """The source side: a durable consumer read through ``jetstream://n0,n1,n2/``
    goes on from the next node when the one it reads from is killed, while the
    stream is being written."""
    n = 6000

    async def create() -> None:
        await wait_for_meta_leader(cluster[0])
        nc = await nats.connect(cluster[1].url)
        await nc.jetstream(timeout=10).add_stream(name="SRC", subjects=["src.>"],
                                                  num_replicas=3)
        await nc.close()

    async def publish() -> None:
        """Paced over ~8 s from a node that stays; a chunk the stream did not ack
        (its leader being elected again) is sent again, de-duplicated by its ids."""
        nc = await nats.connect(cluster[1].url)
        js = nc.jetstream(timeout=10)
        start = time.monotonic()
        for lo in range(0, n, 100):
            while True:
                try:
                    futs = [await js.publish_async(f"src.{i % 3}", b"%d" % i,
                                                   headers={"Nats-Msg-Id": f"p{i}"})
                            for i in range(lo, lo + 100)]
                    await asyncio.wait_for(asyncio.gather(*futs), 3)
                    break
                except Exception:
                    await asyncio.sleep(0.5)
            await asyncio.sleep(max(0.0, start + 8.0 * (lo + 100) / n - time.monotonic()))
        await nc.close()

    asyncio.run(create())
    servers = ",".join(f"127.0.0.1:{node.port}" for node in cluster)
    cap = bustap_bg("capture", f"jetstream://{servers}/SRC?durable=tap&ack_wait_secs=2")
    cap.wait_ready()
    publisher = threading.Thread(target=asyncio.run, args=(publish(),))
    publisher.start()

    def numbers(recs: list[dict[str, Any]]) -> Counter[int]:
        return Counter(int(r["payload"]) for r in recs if r.get("kind") == "message")

    try:
        cap.wait_for(lambda rs: sum(numbers(rs).values()) >= n // 3, 20)
        assert cap.records()[0]["server_name"] == "n0"  # the first server of the list
        cluster[0].proc.kill()  # type: ignore[union-attr]
        cluster[0].proc.wait()  # type: ignore[union-attr]
        at_kill = len(numbers(cap.records()))
        recs = cap.wait_for(lambda rs: len(numbers(rs)) >= n, 45)
    finally:
        publisher.join(60)
    assert cap.stop() == 0
    got = numbers(cap.records())
    inits = [r["server_name"] for r in recs if r["event_type"] == "log_init"]
    print(f"{at_kill} received at the kill; {sum(got.values()) - n} duplicates; "
          f"connected to {inits}")
    assert at_kill < n and inits[0] == "n0" and inits[-1] in ("n1", "n2")
    assert set(got) == set(range(n))  # loss zero
