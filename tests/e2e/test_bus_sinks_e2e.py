"""`bustap capture` into the bus sinks: RabbitMQ (the machine's service, a vhost
of the test's own), JetStream and Mosquitto started per test."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
import nats
import orjson
import pytest
from tests.conftest import Bustap, run_bustap
from tests.fixtures.brokers import Mosquitto, NatsServer, RabbitVhost

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]


def publish_lines(broker: Mosquitto, topic: str, lines: list[str], tmp_path: Path) -> None:
    path = tmp_path / "lines"
    path.write_text("".join(f"{line}\n" for line in lines))
    with path.open("rb") as stdin:
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", topic, "-q", "1", "-l"],
                       stdin=stdin, check=True, timeout=30)


async def declare_queue(vhost: RabbitVhost, exchange: str) -> None:
    conn = await aio_pika.connect(vhost.url())
    channel = await conn.channel()
    ex = await channel.declare_exchange(exchange, "topic", durable=True)
    queue = await channel.declare_queue("taps", durable=True)
    await queue.bind(ex, "bustap.#")
    await conn.close()


async def consume(vhost: RabbitVhost, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """A plain AMQP consumer: what a pmacct-record reader sees."""
    conn = await aio_pika.connect(vhost.url())
    channel = await conn.channel()
    queue = await channel.declare_queue("taps", durable=True)
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        msg = await queue.get(fail=False)
        if msg is None:
            await asyncio.sleep(0.05)
            continue
        await msg.ack()
        got.append(orjson.loads(msg.body))
    await conn.close()
    return got


def test_capture_to_rabbitmq_survives_rabbitmq_going_away(
        mosquitto: Mosquitto, rabbitmq: RabbitVhost, bustap_bg: BgFactory,
        tmp_path: Path) -> None:
    asyncio.run(declare_queue(rabbitmq, "taps"))
    sink = rabbitmq.url(exchange="taps", routing_key="bustap.{kind}")
    b = bustap_bg("capture", mosquitto.url, "-t", "r/#", "--qos", "1", "--name", "tap1",
                  "-o", sink, env={"BUSTAP_SPOOL_DIR": str(tmp_path / "spool")})
    b.wait_ready()
    publish_lines(mosquitto, "r/x", [f"a{i}" for i in range(100)], tmp_path)
    b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) >= 100)
    rabbitmq.deny()  # connections closed, and no new one allowed in
    publish_lines(mosquitto, "r/x", [f"b{i}" for i in range(100)], tmp_path)
    b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) >= 200)
    time.sleep(1.0)
    rabbitmq.allow()
    got = asyncio.run(consume(rabbitmq, 201))  # log_init and 200 messages
    assert b.stop() == 0
    assert "spooling" in b.stderr() and "guest:guest" not in b.stderr()
    msgs = [r for r in got if r.get("kind") == "message"]
    assert [m["payload"] for m in msgs] == [f"a{i}" for i in range(100)] + [
        f"b{i}" for i in range(100)]
    seqs = [m["seq"] for m in msgs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 200
    assert {m["writer_id"] for m in msgs} == {"bustap/tap1"}


def test_capture_into_a_jetstream_stream_it_creates(
        mosquitto: Mosquitto, nats_factory: Callable[..., NatsServer], bustap_bg: BgFactory,
        tmp_path: Path) -> None:
    server = nats_factory(args=("-js", "-sd", str(tmp_path / "js")))
    sink = (f"jetstream://127.0.0.1:{server.port}/TAPS?subject=bustap.{{kind}}.{{topic}}"
            "&create=true")
    b = bustap_bg("capture", mosquitto.url, "-t", "j/#", "--qos", "1", "-o", sink)
    b.wait_ready()
    publish_lines(mosquitto, "j/a.b", [str(i) for i in range(500)], tmp_path)
    b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) >= 500)
    assert b.stop() == 0

    async def check() -> tuple[int, list[str]]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        info = await js.stream_info("TAPS")
        psub = await js.pull_subscribe("bustap.message.>", durable="c", stream="TAPS")
        msgs = await psub.fetch(500, timeout=5)
        await nc.close()
        return info.state.messages, [m.subject for m in msgs]

    count, subjects = asyncio.run(check())
    assert count == 502  # log_init, 500 messages, log_close
    assert set(subjects) == {"bustap.message.j/a_b"}


def test_mirror_one_broker_into_another(
        mosquitto_factory: Callable[..., Mosquitto], bustap_bg: BgFactory,
        tmp_path: Path) -> None:
    src = mosquitto_factory(name="src")
    dst = mosquitto_factory("allow_anonymous true\nmax_queued_messages 0", name="dst")
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(dst.port), "-t", "mirror/#", "-q", "1",
                            "-C", "301", "-v"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    b = bustap_bg("capture", src.url, "-t", "m/#", "--qos", "1",
                  "-o", f"{dst.url}/?topic=mirror/{{topic}}&qos=1")
    b.wait_ready()
    publish_lines(src, "m/dev1/temp", [str(i) for i in range(300)], tmp_path)
    out, _ = sub.communicate(timeout=20)
    assert b.stop() == 0
    first, *lines = out.splitlines()
    assert first.startswith("mirror/_ ")  # log_init has no topic: the placeholder
    assert len(lines) == 300 and all(line.startswith("mirror/m/dev1/temp {") for line in lines)
    assert [orjson.loads(line.split(" ", 1)[1])["payload"] for line in lines] == list(range(300))


def test_bad_sink_url_is_a_usage_error_without_the_password() -> None:
    r = run_bustap("capture", "mqtt://127.0.0.1:1", "-o",
                   "amqp://u:hunter2@127.0.0.1/?exchange=x&routing_key=a.{kind")
    assert r.returncode == 2 and "routing_key" in r.stderr and "hunter2" not in r.stderr
