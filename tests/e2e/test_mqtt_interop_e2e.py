"""`bustap capture` against MQTT brokers other than Mosquitto: RabbitMQ's MQTT
plugin, nats-server's MQTT listener, amqtt and aedes, all real, on loopback.

None of these speaks MQTT 5 here: nats-server, amqtt and aedes answer an MQTT 5
CONNECT with CONNACK "unacceptable protocol version", RabbitMQ 3.10 closes the
connection without a word. ``auto`` (the default) must end up on 3.1.1 in both
cases, and stay there for reconnects. Each capture feature is checked on each
broker: QoS 0/1/2, retained, binary and large payloads, and a persistent
session that keeps messages while bustap is away."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Bustap
from tests.fixtures.mqtt_brokers import NAMES, Broker, Unavailable, start_broker

from bustap.net.mqtt import ConnectOptions, MqttClient

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]
# Broker limits found by these tests, each with the broker's word for it.
QOS2_GRANTED_AS = {"rabbitmq": 1}  # RabbitMQ < 3.13: "QoS 2 is downgraded to QoS 1"
# amqtt 0.12 delivers at the subscription's QoS, not min(publish, subscription)
# (MQTT 3.1.1 section 3.8.4): bustap records what the broker sent.
DELIVERS_AT_SUBSCRIPTION_QOS = {"amqtt"}
# amqtt 0.12 answers a clean-session-0 reconnect with session present 0 and
# delivers nothing that was queued (mosquitto_sub -c shows the same).
NO_PERSISTENT_SESSIONS = {"amqtt"}


# The RabbitMQ tests share the machine's RabbitMQ: one worker enables its plugin.
@pytest.fixture(params=[pytest.param(n, marks=pytest.mark.xdist_group("rabbitmq-mqtt"))
                        if n == "rabbitmq" else n for n in NAMES])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    try:
        b = start_broker(request.param, tmp_path / request.param)
    except Unavailable as exc:  # make test installs every one of them
        pytest.fail(f"{request.param}: {exc}; run `make test` (scripts/setup.sh)")
    try:
        yield b
    finally:
        b.stop()


async def _publish(broker: Broker, messages: list[tuple[str, bytes, int, bool]]) -> None:
    opts = ConnectOptions(host="127.0.0.1", port=broker.port, client_id="interop-pub",
                          version=4)
    async with MqttClient(opts) as client:
        for topic, payload, qos, retain in messages:
            await client.publish(topic, payload, qos=qos, retain=retain)
        await asyncio.sleep(0.1)


def _prefix(broker: Broker, tmp_path: Path) -> str:
    # Topics of their own per test: RabbitMQ is shared by the whole run.
    return f"interop/{broker.name}/{abs(hash(tmp_path)) % 10**8}"


def _v5_answer(port: int) -> bytes:
    """What the broker sends back to a bare MQTT 5 CONNECT (b"" = it closed)."""
    body = struct.pack("!H", 4) + b"MQTT" + bytes([5, 2]) + struct.pack("!H", 30) + b"\x00"
    body += struct.pack("!H", 5) + b"probe"
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.settimeout(5)
        s.sendall(bytes([0x10, len(body)]) + body)
        try:
            return s.recv(16)
        except (TimeoutError, ConnectionResetError):
            return b""


async def test_capture_features(broker: Broker, bustap_bg: BgFactory, tmp_path: Path) -> None:
    t = _prefix(broker, tmp_path)
    blob = bytes(range(256)) * 4
    large = b"L" * 300_000
    await _publish(broker, [(f"{t}/retained", b"on", 1, True)])
    # RabbitMQ < 3.13 sends retained messages to exact-topic subscriptions only.
    cap = bustap_bg("capture", broker.url, "-t", f"{t}/retained", "-t", f"{t}/live/#",
                    "--qos", "2", "-C", "6")
    cap.wait_ready(timeout=15)
    await _publish(broker, [(f"{t}/live/q0", b"zero", 0, False),
                            (f"{t}/live/q1", b"one", 1, False),
                            (f"{t}/live/q2", b"two", 2, False),
                            (f"{t}/live/bin", blob, 1, False),
                            (f"{t}/live/large", large, 1, False)])
    assert cap.proc.wait(20) == 0, cap.stderr()
    await _publish(broker, [(f"{t}/retained", b"", 1, True)])  # clear it
    init = cap.records()[0]
    assert init["protocol_version"] == ("5.0" if broker.v5 else "3.1.1")
    assert init["granted_qos"] == [QOS2_GRANTED_AS.get(broker.name, 2)] * 2
    msgs = {m["topic"].rsplit("/", 1)[-1]: m for m in cap.messages()}
    assert set(msgs) == {"retained", "q0", "q1", "q2", "bin", "large"}, msgs.keys()
    assert msgs["retained"]["retain"] is True and msgs["retained"]["payload"] == "on"
    granted = QOS2_GRANTED_AS.get(broker.name, 2)
    for name, qos in (("q0", 0), ("q1", 1), ("q2", 2)):
        want = granted if broker.name in DELIVERS_AT_SUBSCRIPTION_QOS else min(qos, granted)
        assert msgs[name]["qos"] == want, (name, msgs[name]["qos"])
    assert msgs["q0"]["payload"] == "zero" and msgs["q2"]["payload"] == "two"
    assert msgs["bin"]["format"] == "binary"
    assert base64.b64decode(msgs["bin"]["payload"]) == blob
    assert msgs["large"]["size"] == len(large)
    assert all(m["retain"] is False for k, m in msgs.items() if k != "retained")


async def test_session_resume(broker: Broker, bustap_bg: BgFactory, tmp_path: Path) -> None:
    t = _prefix(broker, tmp_path)
    session = f"tap-{broker.name}-{abs(hash(tmp_path)) % 10**6}"
    args = ("capture", broker.url, "-t", f"{t}/#", "--qos", "1", "--session", session)
    first = bustap_bg(*args, out="first.jsonl")
    first.wait_ready(timeout=15)
    await _publish(broker, [(f"{t}/before", b"0", 1, False)])
    first.wait_for(lambda rs: any(r.get("topic", "").endswith("/before") for r in rs))
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(10) == 0, first.stderr()
    await _publish(broker, [(f"{t}/away", b"%d" % i, 1, False) for i in range(3)])
    second = bustap_bg(*args, out="second.jsonl")
    second.wait_ready(timeout=15)
    init = second.records()[0]
    if broker.name in NO_PERSISTENT_SESSIONS:
        # the broker's limit, not ours: bustap records what it said, and that is all
        assert init["session_present"] is False
        return
    assert init["session_present"] is True
    second.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) >= 3)
    assert sorted(m["payload"] for m in second.messages()) == [0, 1, 2]


class _Relay:
    """A TCP relay in front of the real broker that notes the protocol level
    of each CONNECT and can cut the connections (a network blip)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.levels: list[int] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, first: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if first and data[:1] == b"\x10":  # CONNECT: level after "MQTT"
                    i = data.find(b"MQTT")
                    if i > 0:
                        self.levels.append(data[i + 4])
                    first = False
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        with self.lock:
            for s in (src, dst):  # the first pump to end closes both sockets
                if s in self.conns:
                    self.conns.remove(s)
                    s.close()

    def cut(self) -> None:
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.sock.close()
        self.cut()


async def test_auto_falls_back_and_remembers(broker: Broker, bustap_bg: BgFactory,
                                             tmp_path: Path) -> None:
    answer = _v5_answer(broker.port)
    if broker.v5:  # nothing to fall back from: a CONNACK with reason code 0
        assert answer[:1] == b"\x20" and answer[3:4] == b"\x00", answer
        return
    # RabbitMQ closes on MQTT 5; the others refuse it with CONNACK rc 1.
    assert answer == (b"" if broker.name == "rabbitmq" else b"\x20\x02\x00\x01"), answer
    relay = _Relay(broker.port)
    t = _prefix(broker, tmp_path)
    try:
        cap = bustap_bg("capture", f"mqtt://127.0.0.1:{relay.port}", "-t", f"{t}/#")
        cap.wait_ready(timeout=15)
        await _publish(broker, [(f"{t}/a", b"1", 0, False)])
        cap.wait_for(lambda rs: any(r.get("payload") == 1 for r in rs))
        relay.cut()  # bustap reconnects, straight in 3.1.1 this time
        cap.wait_ready(2, timeout=20)
        await _publish(broker, [(f"{t}/b", b"2", 0, False)])
        recs: list[dict[str, Any]] = cap.wait_for(
            lambda rs: any(r.get("payload") == 2 for r in rs), timeout=15)
    finally:
        relay.close()
    assert relay.levels[:3] == [5, 4, 4], relay.levels
    inits = [r for r in recs if r["event_type"] == "log_init"]
    assert [r["protocol_version"] for r in inits] == ["3.1.1", "3.1.1"]
