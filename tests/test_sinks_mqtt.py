"""The mqtt sink against real Mosquitto brokers started per test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from tests.fixtures.brokers import Mosquitto, mosquitto_passwd

from bustap.errors import ConfigError, SinkError
from bustap.net.mqtt import ConnectOptions, MqttClient
from bustap.record import Writer
from bustap.sinks import RecordBatch, make_sink

pytestmark = pytest.mark.e2e

# a subscriber that never loses a queued QoS 1 message to the broker's limits
UNLIMITED = "allow_anonymous true\nmax_queued_messages 0\n"


def records(n: int, **fields: Any) -> list[dict[str, Any]]:
    w = Writer("mqtt-test")
    return [w.new("log", "nats://127.0.0.1:4222", kind="message", topic=f"a/{i % 3}",
                  payload=i, **fields) for i in range(n)]


async def subscriber(broker: Mosquitto, flt: str) -> MqttClient:
    client = MqttClient(ConnectOptions("127.0.0.1", broker.port, client_id="check"))
    await client.connect()
    await client.subscribe([(flt, 1)])
    return client


async def collect(client: MqttClient, n: int) -> list[Any]:
    got: list[Any] = []
    async with asyncio.timeout(20):
        async for batch in client:
            client.ack(batch)
            got += batch
            if len(got) >= n:
                return got
    return got


@pytest.mark.parametrize("qos", ["1", "2"])
async def test_every_record_acknowledged_and_in_order(
        mosquitto_factory: Callable[..., Mosquitto], qos: str) -> None:
    broker = mosquitto_factory(UNLIMITED)
    sub = await subscriber(broker, "mirror/#")
    sink = make_sink(f"{broker.url}/?topic=mirror/{{topic}}/{{device}}&qos={qos}")
    await sink.open()
    sent = records(1500, device="r1/+edge")  # more than mosquitto's Receive Maximum (20)
    await sink.write(RecordBatch(sent))
    await sink.aclose()
    got = await collect(sub, 1500)
    await sub.close()
    assert [orjson.loads(m.payload)["seq"] for m in got] == [r["seq"] for r in sent]
    # the topic keeps its levels, the wildcard in the device does not survive
    assert got[0].topic == "mirror/a/0/r1/_edge"


async def test_credentials_from_the_url_and_errors_without_password(
        mosquitto_factory: Callable[..., Mosquitto], tmp_path: Any) -> None:
    pw = mosquitto_passwd(tmp_path / "pw", {"tap": "s3cr3t"})
    broker = mosquitto_factory(f"allow_anonymous false\npassword_file {pw}\n")
    good = make_sink(f"mqtt://tap:s3cr3t@127.0.0.1:{broker.port}/?topic=x/{{kind}}&qos=1")
    await good.open()
    await good.write(RecordBatch(records(3)))
    await good.aclose()
    bad = make_sink(f"mqtt://tap:wrong-pw@127.0.0.1:{broker.port}/?topic=x")
    with pytest.raises(SinkError) as err:
        await bad.open()
    assert "refused" in str(err.value) and "wrong-pw" not in str(err.value)


async def test_broker_restart_is_a_sink_error_then_a_reconnect(
        mosquitto_factory: Callable[..., Mosquitto]) -> None:
    broker = mosquitto_factory(UNLIMITED)
    sink = make_sink(f"{broker.url}/?topic=r/{{kind}}&qos=1")
    await sink.open()
    broker.stop()
    with pytest.raises(SinkError):
        await sink.write(RecordBatch(records(5)))
    broker.start()
    sub = await subscriber(broker, "r/#")
    await sink.write(RecordBatch(records(5)))  # reconnects first
    got = await collect(sub, 5)
    await sub.close()
    await sink.aclose()
    assert len(got) == 5


def test_bad_parameters_fail_at_start() -> None:
    with pytest.raises(ConfigError, match="qos must be 0, 1 or 2"):
        make_sink("mqtt://h/?qos=3")
    with pytest.raises(ConfigError, match="wildcards"):
        make_sink("mqtt://h/?topic=a/%23")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_sink("mqtt://h/?subject=a")
