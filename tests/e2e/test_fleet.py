"""A fleet of brokers captured at once: several real Mosquitto and nats-server
processes among many addresses where nothing answers (closed ports, and
listeners that accept and never speak)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Bustap, run_bustap
from tests.fixtures.brokers import (
    Mosquitto,
    NatsServer,
    free_port,
    mosquitto_passwd,
    mosquitto_pub,
)

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]


@dataclass
class LoopbackMosquitto(Mosquitto):
    """A Mosquitto on one loopback address (127.0.0.K): brokers of a range
    ``mqtt://127.0.0.{1..40}:PORT`` share the port, like routers share 1883."""

    address: str = "127.0.0.1"

    def config(self) -> str:
        return super().config().replace(f"listener {self.port} 127.0.0.1",
                                        f"listener {self.port} {self.address}")

    def start(self) -> LoopbackMosquitto:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.address, self.port), 0.2):
                return self
            time.sleep(0.05)
        raise TimeoutError(f"mosquitto on {self.address}:{self.port} did not start")


def _pub(address: str, port: int, topic: str, message: str) -> None:
    subprocess.run(["/usr/bin/mosquitto_pub", "-h", address, "-p", str(port), "-t", topic,
                    "-m", message], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def silent_listeners(n: int) -> Iterator[list[int]]:
    """Ports that accept TCP and never answer: a hung broker, the worst kind."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        socks.append(s)
    try:
        yield [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _by_source(records: list[dict[str, Any]], event_type: str) -> dict[str, dict[str, Any]]:
    return {r["source"]: r for r in records if r["event_type"] == event_type}


def test_range_of_brokers_live_dead_and_hung(tmp_path: Path, bustap_bg: BgFactory) -> None:
    port = free_port()
    up = range(1, 21)
    live = [LoopbackMosquitto(tmp_path / f"m{k}", "allow_anonymous true", port=port,
                              address=f"127.0.0.{k}").start() for k in up]
    try:
        with silent_listeners(3) as hung:
            # 200 addresses, 20 brokers; the hung ones hold a connection slot
            # for the whole 30 s connect timeout: the live brokers must not wait
            b = bustap_bg("capture", f"mqtt://127.0.0.{{1..200}}:{port}", "-t", "fleet/#",
                          *[f"mqtt://127.0.0.1:{p}" for p in hung],
                          "--connect-timeout", "30", "--max-connecting", "8")
            b.wait_for(lambda rs: len(_by_source(rs, "log_init")) == len(up)
                       and len(_by_source(rs, "log_close")) >= 180, timeout=40)
            for m in live:
                _pub(m.address, port, f"fleet/{m.address}", m.address)
            recs = b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs)
                              == len(up), timeout=20)
            # stopped while its brokers are up: a graceful stop, not 20 reconnects
            assert b.stop(timeout=30) == 0
            recs = b.records()
    finally:
        for m in live:
            m.stop()
    msgs = {r["source"]: r["payload"] for r in recs if r.get("kind") == "message"}
    assert msgs == {f"mqtt://127.0.0.{k}:{port}": f"127.0.0.{k}" for k in up}
    closes = _by_source(recs, "log_close")
    dead = {f"mqtt://127.0.0.{k}:{port}" for k in range(21, 201)}
    assert dead <= set(closes)
    for name in dead:
        assert closes[name]["connected"] is False
        assert "refused" in closes[name]["last_error"].lower()
    inits = _by_source(recs, "log_init")
    assert all(inits[n]["connected"] is True for n in inits)
    # one ordered stream: one writer, seq without gaps
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    # a broker down is reported once, not at every retry
    assert len([r for r in recs if r["source"] == f"mqtt://127.0.0.200:{port}"]) == 1


def test_sources_file_with_credentials_and_a_late_broker(
        tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto],
        nats_factory: Callable[..., NatsServer], bustap_bg: BgFactory) -> None:
    passwd = mosquitto_passwd(tmp_path / "passwd", {"rtr-a": "pw-alpha-1", "rtr-b": "pw-beta-2"})
    a = mosquitto_factory(f"allow_anonymous false\npassword_file {passwd}", name="a")
    bb = mosquitto_factory(f"allow_anonymous false\npassword_file {passwd}", name="b")
    bus = nats_factory("authorization { token: tok-gamma-3 }")
    late = Mosquitto(tmp_path / "late", "allow_anonymous true")
    dead = [free_port() for _ in range(20)]
    fleet = tmp_path / "fleet.txt"
    fleet.write_text(
        "# two routers with their own users, the bus, and what is not up yet\n"
        f"mqtt://127.0.0.1:{a.port} username=rtr-a password_env=RTR_A_PW\n"
        f"mqtt://rtr-b:pw-beta-2@127.0.0.1:{bb.port}\n"
        f"nats://127.0.0.1:{bus.port} token_env=BUS_TOKEN topics=hm.>\n"
        f"mqtt://127.0.0.1:{late.port} backoff_initial_secs=0.1 backoff_max_secs=0.3\n"
        + "".join(f"mqtt://127.0.0.1:{p}\n" for p in dead)
        + f"nats://127.0.0.1:{free_port()} token_env=BUS_TOKEN\n")
    env = {"RTR_A_PW": "pw-alpha-1", "BUS_TOKEN": "tok-gamma-3"}
    b = bustap_bg("capture", "--sources", str(fleet), "-t", "ev/#", env=env)
    b.wait_for(lambda rs: len(_by_source(rs, "log_init")) == 3
               and len(_by_source(rs, "log_close")) >= 22)
    mosquitto_pub(a.port, "ev/a", "from-a", args=("-u", "rtr-a", "-P", "pw-alpha-1"))
    mosquitto_pub(bb.port, "ev/b", "from-b", args=("-u", "rtr-b", "-P", "pw-beta-2"))
    sent = run_bustap("pub", f"nats://tok-gamma-3@127.0.0.1:{bus.port}", "-t",
                      "hm.agent.alert.x", "-m", "from-bus")
    assert sent.returncode == 0, sent.stderr
    late.start()
    try:
        b.wait_for(lambda rs: f"mqtt://127.0.0.1:{late.port}" in _by_source(rs, "log_init"))
        mosquitto_pub(late.port, "ev/late", "from-late")
        recs = b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) == 4)
    finally:
        late.stop()
    assert b.stop() == 0
    got = {r["payload"]: r["source"] for r in recs if r.get("kind") == "message"}
    assert got == {"from-a": f"mqtt://127.0.0.1:{a.port}",
                   "from-b": f"mqtt://127.0.0.1:{bb.port}",
                   "from-bus": f"nats://127.0.0.1:{bus.port}",
                   "from-late": f"mqtt://127.0.0.1:{late.port}"}
    late_close = [r for r in recs if r["source"] == f"mqtt://127.0.0.1:{late.port}"]
    assert late_close[0]["event_type"] == "log_close" and not late_close[0]["connected"]
    assert late_close[1]["event_type"] == "log_init"
    text = b.out.read_text() + b.stderr()
    for secret in ("pw-alpha-1", "pw-beta-2", "tok-gamma-3"):
        assert secret not in text
