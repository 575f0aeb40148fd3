"""NATS URLs naming several servers: every server handed to nats-py, the first
that answers taken, a lost one tried last on reconnect (real nats-servers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import orjson
import pytest
from tests.conftest import Bustap
from tests.fixtures.brokers import NatsServer, free_port

from bustap.errors import ConnectError, SinkError
from bustap.net.nats import connect, connect_kwargs
from bustap.record import Writer
from bustap.sinks import RecordBatch, make_sink
from bustap.urls import parse_url


def test_connect_kwargs_lists_every_server_in_order() -> None:
    kw = connect_kwargs(parse_url("nats://tok@n0,n1:4223,[::1]:4224"))
    assert kw["servers"] == ["nats://n0:4222", "nats://n1:4223", "nats://[::1]:4224"]
    assert kw["token"] == "tok" and kw["allow_reconnect"] is False
    kw = connect_kwargs(parse_url("tls://u:p@a:1,b:2"), insecure=True)
    assert kw["servers"] == ["tls://a:1", "tls://b:2"]
    assert (kw["user"], kw["password"], kw["tls_hostname"]) == ("u", "p", "a")
    assert connect_kwargs(parse_url("jetstream://h/S"))["servers"] == ["nats://h:4222"]


@pytest.mark.e2e
async def test_connect_skips_dead_servers_and_rotates_past_the_one_taken(
        nats_factory: Callable[..., NatsServer]) -> None:
    live = nats_factory(config="server_name: live")
    dead1, dead2 = free_port(), free_port()
    url = parse_url(f"nats://127.0.0.1:{dead1},127.0.0.1:{live.port},127.0.0.1:{dead2}")
    kw = connect_kwargs(url, connect_timeout=2)
    nc = await connect(url, kw)
    assert nc.connected_url.port == live.port
    await nc.close()
    # next time: the server after the one taken first, the one taken last
    assert kw["servers"] == [f"nats://127.0.0.1:{p}" for p in (dead2, dead1, live.port)]
    nc = await connect(url, kw)
    assert nc.connected_url.port == live.port
    await nc.close()


@pytest.mark.e2e
async def test_connect_fails_only_when_every_server_failed(
        nats_factory: Callable[..., NatsServer]) -> None:
    dead = [free_port(), free_port()]
    url = parse_url(f"nats://s3cr3t@127.0.0.1:{dead[0]},127.0.0.1:{dead[1]}")
    with pytest.raises(ConnectError) as info:
        await connect(url, connect_kwargs(url, connect_timeout=2))
    text = str(info.value)
    assert "none of its 2 servers answered" in text
    assert all(f"127.0.0.1:{p}: connection refused" in text for p in dead)
    assert "s3cr3t" not in text and not info.value.fatal  # a server may come back
    # refused for good by every server: fatal, said once per server
    auth = [nats_factory(config='authorization { token: "right" }', name=f"a{i}")
            for i in range(2)]
    url = parse_url(f"nats://wrong@127.0.0.1:{auth[0].port},127.0.0.1:{auth[1].port}")
    with pytest.raises(ConnectError) as info:
        await connect(url, connect_kwargs(url, connect_timeout=2))
    assert info.value.fatal and "wrong" not in str(info.value)
    assert str(info.value).lower().count("authorization violation") == 2
    # one refusing for good, one merely down: retrying may still help
    url = parse_url(f"nats://wrong@127.0.0.1:{auth[0].port},127.0.0.1:{dead[0]}")
    with pytest.raises(ConnectError) as info:
        await connect(url, connect_kwargs(url, connect_timeout=2))
    assert not info.value.fatal


@pytest.mark.e2e
async def test_sink_fails_over_to_the_next_server(
        nats_factory: Callable[..., NatsServer]) -> None:
    a, b = nats_factory(name="a"), nats_factory(name="b")
    subs = []
    for server in (a, b):
        nc = await nats.connect(server.url)
        subs.append((nc, await nc.subscribe("fo.>")))
        await nc.flush()
    # a long timeout: the loss must show as the connection closing, not as a wait for it
    sink = make_sink(f"nats://127.0.0.1:{a.port},127.0.0.1:{b.port}/?subject=fo.x"
                     "&timeout_secs=60")
    await sink.open()
    w = Writer("failover")
    await sink.write(RecordBatch([w.new("log", "t", kind="message", payload=n)
                                  for n in range(10)]))
    a.stop()
    batch = RecordBatch([w.new("log", "t", kind="message", payload=n) for n in range(10, 20)])
    reasons = []
    for _ in range(20):  # the loss shows at the first write after it, or before it
        try:
            await sink.write(batch)
            break
        except SinkError as exc:
            reasons.append(exc.reason)
            await asyncio.sleep(0.1)
    assert set(reasons) <= {"connection to the NATS server lost"}
    await sink.aclose()
    got: list[list[int]] = []
    for nc, sub in subs:
        payloads = []
        while True:
            try:
                m = await sub.next_msg(0.5)
            except nats.errors.TimeoutError:
                break
            payloads.append(orjson.loads(m.data)["payload"])
        got.append(payloads)
        if not nc.is_closed:
            await nc.close()
    assert got == [list(range(10)), list(range(10, 20))]


@pytest.mark.e2e
def test_capture_reconnects_to_the_next_live_server(
        nats_factory: Callable[..., NatsServer], bustap_bg: Callable[..., Bustap]) -> None:
    a = nats_factory(config="server_name: a", name="a")
    b = nats_factory(config="server_name: b", name="b")
    cap = bustap_bg("capture", f"nats://127.0.0.1:{a.port},127.0.0.1:{b.port}", "-t", "fo.>")
    cap.wait_ready()

    async def pub(server: NatsServer, n: int) -> None:
        nc = await nats.connect(server.url)
        await nc.publish("fo.x", str(n).encode())
        await nc.flush()
        await nc.close()

    asyncio.run(pub(a, 1))
    cap.wait_for(lambda rs: any(r.get("payload") == 1 for r in rs))
    a.stop()
    cap.wait_ready(2, timeout=15)
    asyncio.run(pub(b, 2))
    recs = cap.wait_for(lambda rs: any(r.get("payload") == 2 for r in rs))
    assert cap.stop() == 0
    inits = [r for r in recs if r["event_type"] == "log_init"]
    assert [r["server_name"] for r in inits[:2]] == ["a", "b"]
    assert [r["payload"] for r in recs if r.get("kind") == "message"] == [1, 2]
