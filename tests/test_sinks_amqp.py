"""The amqp sink against the machine's RabbitMQ, in a vhost of the test's own."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import pytest
from tests.fixtures.brokers import RabbitVhost

from bustap.errors import ConfigError, SinkError
from bustap.record import Writer
from bustap.sinks import RecordBatch, make_sink
from bustap.spool import Spool

pytestmark = pytest.mark.e2e


def records(n: int, writer: Writer | None = None, **fields: Any) -> list[dict[str, Any]]:
    w = writer or Writer("amqp-test")
    return [w.new("log", "mqtt://127.0.0.1:1883", kind="message", topic=f"t/{i}",
                  payload={"n": i}, **fields) for i in range(n)]


async def bound_queue(vhost: RabbitVhost, exchange: str, key: str = "#") -> tuple[Any, Any]:
    """A plain AMQP consumer's queue, bound to the exchange the sink declares."""
    conn = await aio_pika.connect(vhost.url())
    channel = await conn.channel()
    ex = await channel.declare_exchange(exchange, "topic", durable=True)
    queue = await channel.declare_queue("records", durable=True)
    await queue.bind(ex, key)
    return conn, queue


async def drain(queue: Any, n: int, timeout: float = 10.0) -> list[Any]:
    got: list[Any] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < n and asyncio.get_running_loop().time() < deadline:
        msg = await queue.get(fail=False)
        if msg is None:
            await asyncio.sleep(0.05)
            continue
        await msg.ack()
        got.append(msg)
    return got


async def test_every_record_arrives_in_order_in_pmacct_layout(rabbitmq: RabbitVhost) -> None:
    conn, queue = await bound_queue(rabbitmq, "bt")
    sink = make_sink(rabbitmq.url(exchange="bt", routing_key="bustap.{kind}.{device}"))
    await sink.open()
    sent = records(500, device="edge1.example.net")
    await sink.write(RecordBatch(sent[:200]))
    await sink.write(RecordBatch(sent[200:]))
    await sink.aclose()
    got = await drain(queue, 500)
    await conn.close()
    import orjson

    bodies = [orjson.loads(m.body) for m in got]
    assert [b["seq"] for b in bodies] == [r["seq"] for r in sent]
    assert all(b["writer_id"] == "bustap/amqp-test" for b in bodies)
    first = got[0]
    assert first.routing_key == "bustap.message.edge1_example_net"  # one token per field
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert first.content_type == "application/json"
    assert first.message_id == f"bustap/amqp-test:{sent[0]['seq']}"
    assert list(bodies[0])[:5] == ["seq", "writer_id", "timestamp", "event_type", "source"]


async def test_unroutable_records_are_counted(rabbitmq: RabbitVhost) -> None:
    conn, _queue = await bound_queue(rabbitmq, "bt", key="only.this")
    sink = make_sink(rabbitmq.url(exchange="bt", routing_key="other.{kind}"))
    await sink.open()
    await sink.write(RecordBatch(records(3)))
    await sink.aclose()
    await conn.close()
    assert sink.unroutable == 3  # type: ignore[attr-defined]


async def test_wrong_password_and_vhost_are_named_without_the_password(
        rabbitmq: RabbitVhost) -> None:
    bad = make_sink(f"amqp://guest:s3cr3t-pw@127.0.0.1/{rabbitmq.name}?exchange=bt")
    with pytest.raises(SinkError) as err:
        await bad.open()
    assert "authentication failed" in str(err.value) and "s3cr3t-pw" not in str(err.value)
    missing = make_sink("amqp://guest:guest@127.0.0.1/no-such-vhost-here?exchange=bt")
    with pytest.raises(SinkError, match="no access to vhost 'no-such-vhost-here'"):
        await missing.open()


def test_bad_parameters_fail_at_start() -> None:
    with pytest.raises(ConfigError, match="unknown parameter 'routingkey'"):
        make_sink("amqp://h/?exchange=x&routingkey=a")
    with pytest.raises(ConfigError, match="routing_key"):
        make_sink("amqp://h/?routing_key=a.{kind!r}")
    with pytest.raises(ConfigError, match="exchange_type"):
        make_sink("amqp://h/?exchange_type=bogus")


async def test_rabbitmq_going_away_spools_then_delivers_in_order(
        rabbitmq: RabbitVhost, tmp_path: Any) -> None:
    conn, queue = await bound_queue(rabbitmq, "bt")
    sink = make_sink(rabbitmq.url(exchange="bt", routing_key="bustap.{kind}"))
    spool = Spool(sink, directory=tmp_path, backoff_initial_secs=0.2, backoff_max_secs=0.5)
    await spool.open()
    w = Writer("amqp-test")
    await spool.write(RecordBatch(records(10, w)))
    await asyncio.to_thread(rabbitmq.deny)  # access refused, connections closed
    await spool.write(RecordBatch(records(10, w)))
    await spool.write(RecordBatch(records(10, w)))
    assert spool.spooled == 20
    await asyncio.sleep(1.0)  # retries meet "no access to vhost"
    await asyncio.to_thread(rabbitmq.allow)
    for _ in range(100):
        if not spool.backlog_bytes and spool.replayed == 20:
            break
        await asyncio.sleep(0.1)
    await spool.aclose()
    # the test's own connection was closed too
    await conn.close()
    conn, queue = await bound_queue(rabbitmq, "bt")
    got = await drain(queue, 30)
    await conn.close()
    import orjson

    assert [orjson.loads(m.body)["seq"] for m in got] == list(range(30))
