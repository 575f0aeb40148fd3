"""`bustap replay`: a real capture published again, gaps kept (divided by
--speed), payloads byte for byte, MQTT 5 properties and NATS headers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.conftest import BUSTAP, Bustap, read_records, run_bustap
from tests.fixtures.brokers import Mosquitto, NatsServer

from bustap.net.mqtt import ConnectOptions, MqttClient
from bustap.record import parse_timestamp

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]

# (delay before it, topic, payload, qos, retain, properties, user properties)
TRAFFIC: list[tuple[float, str, bytes, int, bool, dict[str, Any] | None, list[tuple[str, str]]]] = [
    # JSON as devices write it: spaces, an escape, 21.50, an integer past 64 bits
    (0.0, "rp/json", b'{ "temp": 21.50, "unit": "\\u00b0C", "serial": 123456789012345678901234 }',
     1, False, None, [("site", "lab")]),
    (0.30, "rp/text", "héllo wörld".encode(), 0, False, {"content_type": "text/plain"}, []),
    (0.05, "rp/bin", b"\x00\xff\xfe\x01binary", 1, False, None, []),
    (0.40, "rp/num", b"42", 2, True, {"payload_format_indicator": 1}, []),
    (0.15, "rp/json", b'{\n  "temp": 22.0\n}\n', 1, False,
     {"response_topic": "rp/reply", "correlation_data": b"\x01\x02"}, [("a", "1"), ("a", "2")]),
]


def messages(path: Path) -> list[dict[str, Any]]:
    return [r for r in read_records(path) if r.get("kind") == "message"]


def gaps(msgs: list[dict[str, Any]]) -> list[float]:
    times = [parse_timestamp(m["timestamp"]).timestamp() for m in msgs]
    return [b - a for a, b in itertools.pairwise(times)]


async def publish_traffic(port: int) -> None:
    client = MqttClient(ConnectOptions("127.0.0.1", port, client_id="traffic"))
    await client.connect()
    for delay, topic, payload, qos, retain, props, user in TRAFFIC:
        await asyncio.sleep(delay)
        await client.publish(topic, payload, qos=qos, retain=retain, properties=props,
                             user_properties=user)
    await client.close()


@pytest.fixture
def captured(mosquitto_factory: Callable[..., Mosquitto], bustap_bg: BgFactory) -> Path:
    broker = mosquitto_factory(name="origin")
    b = bustap_bg("capture", broker.url, "-t", "rp/#", "--qos", "2", out="capture.jsonl")
    b.wait_ready()
    asyncio.run(publish_traffic(broker.port))
    b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) >= len(TRAFFIC))
    assert b.stop() == 0
    return b.out


SAME = ("topic", "qos", "retain", "size", "format", "payload", "payload_raw", "headers")


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_replay_keeps_gaps_and_payloads(
        captured: Path, mosquitto_factory: Callable[..., Mosquitto], bustap_bg: BgFactory,
        speed: float) -> None:
    target = mosquitto_factory(name="target")
    b = bustap_bg("capture", target.url, "-t", "rp/#", "--qos", "2", out="replayed.jsonl")
    b.wait_ready()
    r = run_bustap("replay", str(captured), "--to", target.url, "--speed", f"{speed:g}")
    assert r.returncode == 0, r.stderr
    assert f"replayed {len(TRAFFIC)} messages" in r.stderr
    b.wait_for(lambda rs: sum(x.get("kind") == "message" for x in rs) >= len(TRAFFIC))
    b.stop()
    orig, again = messages(captured), messages(b.out)
    for o, a in zip(orig, again, strict=True):
        assert {k: o.get(k) for k in SAME} == {k: a.get(k) for k in SAME}
        assert o.get("properties") == a.get("properties")
    for want, got in zip(gaps(orig), gaps(again), strict=True):
        assert abs(want / speed - got) < 0.05, (gaps(orig), gaps(again))


def test_replay_to_nats_with_headers_as_fast_as_possible(
        captured: Path, nats_server: NatsServer) -> None:
    async def run() -> list[Any]:
        nc = await nats.connect(nats_server.url)
        sub = await nc.subscribe(">")  # an MQTT topic "rp/json" is a one-token subject
        await nc.flush()
        proc = await asyncio.create_subprocess_exec(
            *BUSTAP, "replay", str(captured), "--to", nats_server.url, "--speed", "max",
            stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        assert proc.returncode == 0, err
        got = []
        with contextlib.suppress(nats.errors.TimeoutError):
            while True:
                got.append(await sub.next_msg(0.5))
        await nc.close()
        return got

    got = asyncio.run(run())
    assert [(m.subject, m.data) for m in got] == [(t, p) for _, t, p, *_ in TRAFFIC]
    assert got[0].headers == {"site": "lab"}


def test_bad_speed_and_target() -> None:
    r = run_bustap("replay", "nothing.jsonl", "--to", "mqtt://127.0.0.1:1", "--speed", "0")
    assert r.returncode == 2 and "--speed" in r.stderr
    r = run_bustap("replay", __file__, "--to", "amqp://u:pw@127.0.0.1/")
    assert r.returncode == 2 and "replay publishes to" in r.stderr and "u:pw" not in r.stderr


def test_replay_from_a_store_with_query_filters(
        mosquitto_factory: Callable[..., Mosquitto], bustap_bg: BgFactory,
        tmp_path: Path) -> None:
    broker = mosquitto_factory(name="origin")
    store = tmp_path / "capture.duckdb"
    b = bustap_bg("capture", broker.url, "-t", "rp/#", "--qos", "2", "-o", str(store),
                  out="capture.jsonl")
    b.wait_ready()
    asyncio.run(publish_traffic(broker.port))
    b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) >= len(TRAFFIC))
    assert b.stop() == 0
    orig = [m for m in messages(b.out) if m["topic"] == "rp/json"]

    target = mosquitto_factory(name="target")
    again = bustap_bg("capture", target.url, "-t", "rp/#", "--qos", "2", out="replayed.jsonl")
    again.wait_ready()
    r = run_bustap("replay", "--store", str(store), "-t", "rp/json", "--since", "1h",
                   "--where", "qos = 1", "--to", target.url, "--speed", "2")
    assert r.returncode == 0, r.stderr
    assert "replayed 2 messages" in r.stderr
    again.wait_for(lambda rs: sum(x.get("kind") == "message" for x in rs) >= 2)
    again.stop()
    got = messages(again.out)
    assert [{k: o.get(k) for k in SAME} for o in orig] == [{k: a.get(k) for k in SAME}
                                                             for a in got]
    assert got[1]["properties"] == orig[1]["properties"]
    for want, have in zip(gaps(orig), gaps(got), strict=True):
        assert abs(want / 2 - have) < 0.05, (gaps(orig), gaps(got))

    r = run_bustap("replay", str(b.out), "-t", "rp/json", "--to", target.url)
    assert r.returncode == 2 and "--store" in r.stderr
