"""The nats and jetstream sinks against real nats-servers started per test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from tests.fixtures.brokers import NatsServer

from bustap.errors import ConfigError, SinkError
from bustap.record import Writer
from bustap.sinks import RecordBatch, make_sink
from bustap.spool import Spool

pytestmark = pytest.mark.e2e


def records(n: int, writer: Writer | None = None, **fields: Any) -> list[dict[str, Any]]:
    w = writer or Writer("nats-test")
    return [w.new("log", "mqtt://127.0.0.1:1883", kind="message", topic=f"t/{i}",
                  payload={"n": i}, **fields) for i in range(n)]


@pytest.fixture
def js_server(nats_factory: Callable[..., NatsServer], tmp_path: Path) -> NatsServer:
    return nats_factory(args=("-js", "-sd", str(tmp_path / "jsdata")))


async def test_core_nats_subject_template_and_order(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    sub = await nc.subscribe("bustap.>")
    await nc.flush()
    sink = make_sink(f"{nats_server.url}/?subject=bustap.{{kind}}.{{device}}")
    await sink.open()
    sent = records(300, device="r1.lab")
    await sink.write(RecordBatch(sent))
    got = [await sub.next_msg(5) for _ in sent]
    await sink.aclose()
    await nc.close()
    assert {m.subject for m in got} == {"bustap.message.r1_lab"}
    assert [orjson.loads(m.data)["seq"] for m in got] == [r["seq"] for r in sent]


async def test_jetstream_stream_created_holds_every_record_once(js_server: NatsServer) -> None:
    url = (f"jetstream://127.0.0.1:{js_server.port}/BUSTAP?subject=bustap.{{kind}}.{{device}}"
           "&create=true")
    sink = make_sink(url)
    await sink.open()
    sent = records(1000, device="edge")
    await sink.write(RecordBatch(sent))
    await sink.write(RecordBatch(sent[:500]))  # a re-sent batch: de-duplicated by the server
    await sink.aclose()
    again = make_sink(url)  # a second run delivering the same records adds nothing
    await again.open()
    await again.write(RecordBatch(sent[500:]))
    await again.aclose()
    assert sink.duplicates == 500 and again.duplicates == 500  # type: ignore[attr-defined]
    nc = await nats.connect(js_server.url)
    js = nc.jetstream()
    info = await js.stream_info("BUSTAP")
    assert info.config.subjects == ["bustap.*.*"]
    assert info.state.messages == 1000
    psub = await js.pull_subscribe("bustap.>", durable="check", stream="BUSTAP")
    got: list[Any] = []
    while len(got) < 1000:
        got += await psub.fetch(500, timeout=5)
    await nc.close()
    assert [orjson.loads(m.data)["seq"] for m in got] == [r["seq"] for r in sent]
    assert got[0].headers["Nats-Msg-Id"] == f"bustap/nats-test:{sent[0]['seq']}"


async def test_jetstream_missing_stream_and_bad_names(js_server: NatsServer) -> None:
    sink = make_sink(f"jetstream://127.0.0.1:{js_server.port}/NOPE")
    with pytest.raises(SinkError, match=r"no stream 'NOPE' .*create=true"):
        await sink.open()
    with pytest.raises(ConfigError, match="stream name"):
        make_sink(f"jetstream://127.0.0.1:{js_server.port}/")
    with pytest.raises(ConfigError, match="wildcards"):
        make_sink(f"jetstream://127.0.0.1:{js_server.port}/S?subject=a.*")


async def test_refused_connection_fails_fast() -> None:
    from tests.fixtures.brokers import free_port

    sink = make_sink(f"nats://127.0.0.1:{free_port()}/")
    with pytest.raises(SinkError, match="connection refused"):
        await asyncio.wait_for(sink.open(), 10)


async def test_server_stopped_mid_run_spools_and_delivers_once_in_order(
        js_server: NatsServer, tmp_path: Path) -> None:
    url = f"jetstream://127.0.0.1:{js_server.port}/REC?subject=rec.{{kind}}&create=true"
    sink = make_sink(url)
    spool = Spool(sink, directory=tmp_path / "spool", backoff_initial_secs=0.2,
                  backoff_max_secs=0.5)
    await spool.open()
    w = Writer("nats-test")
    await spool.write(RecordBatch(records(100, w)))
    js_server.stop()
    for _ in range(5):
        await spool.write(RecordBatch(records(100, w)))
    assert spool.spooled == 500
    await asyncio.sleep(2.0)  # retries find nobody listening
    js_server.start()  # same port, same store directory
    for _ in range(100):
        if not spool.backlog_bytes and spool.replayed == 500:
            break
        await asyncio.sleep(0.1)
    await spool.aclose()
    nc = await nats.connect(js_server.url)
    js = nc.jetstream()
    assert (await js.stream_info("REC")).state.messages == 600
    psub = await js.pull_subscribe("rec.>", durable="check", stream="REC")
    got: list[Any] = []
    while len(got) < 600:
        got += await psub.fetch(600, timeout=5)
    await nc.close()
    assert [orjson.loads(m.data)["seq"] for m in got] == list(range(600))
