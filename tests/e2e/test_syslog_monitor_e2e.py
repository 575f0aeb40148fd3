"""Syslog receivers fed by util-linux ``logger`` and by nats-server's own
remote syslog; health from Mosquitto ``$SYS`` and the nats-server monitor."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Bustap
from tests.fixtures.brokers import (
    Mosquitto,
    NatsServer,
    free_port,
    mosquitto_pub,
    nats_server_binaries,
    wait_port,
)

pytestmark = pytest.mark.e2e


def _events(recs: list[dict[str, object]], event: str) -> list[dict[str, object]]:
    return [r for r in recs if r.get("event") == event]


def _mosquitto_log(m: Mosquitto) -> Path:
    mosquitto_pub(m.port, "sensors/x", "1", args=("-i", "via-syslog"))
    deadline = time.monotonic() + 10
    while "Client via-syslog disconnected." not in m.log.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return m.log


@pytest.mark.parametrize(("scheme", "flags"), [
    ("syslog+udp", ["-d", "--rfc3164"]),
    ("syslog+tcp", ["-T", "--rfc5424", "--octet-count"]),
    ("syslog+tcp", ["-T", "--rfc3164"]),
])
def test_logger_forwards_mosquitto_lines(bustap_bg: Callable[..., Bustap], mosquitto: Mosquitto,
                                         scheme: str, flags: list[str]) -> None:
    log = _mosquitto_log(mosquitto)
    port = free_port()
    b = bustap_bg("capture", f"{scheme}://127.0.0.1:{port}")
    b.wait_ready()
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(port), *flags, "-t", "mosquitto",
                    "-f", str(log)], check=True, timeout=10)
    n = len(log.read_text().splitlines())
    recs = b.wait_for(lambda rs: sum(r.get("kind") == "broker_event" for r in rs) >= n)
    c = next(r for r in _events(recs, "client_connected") if r["client_id"] == "via-syslog")
    assert c["listener_port"] == mosquitto.port and c["app"] == "mosquitto"
    assert c["severity"] == "notice" and c["broker"] == "mosquitto"
    assert _events(recs, "publish_in")[0]["topic"] == "sensors/x"
    assert not _events(recs, "unparsed")


def test_nats_server_remote_syslog(bustap_bg: Callable[..., Bustap]) -> None:
    port = free_port()
    b = bustap_bg("capture", f"syslog+udp://127.0.0.1:{port}")
    b.wait_ready()
    # Started by hand: the fixture's -l log file would take precedence over -r.
    binary = next(iter(nats_server_binaries().values()))
    nport = free_port()
    proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(nport), "-D", "-r",
                             f"udp://127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(nport, proc=proc)
        recs = b.wait_for(lambda rs: bool(_events(rs, "broker_ready")))
    finally:
        proc.terminate()
        proc.wait(5)
    info = [r for r in _events(recs, "broker_info") if "version" in r]
    assert info and info[0]["broker"] == "nats" and info[0]["app"] == "nats-server"
    assert _events(recs, "listener_opened")[0]["listener_port"] == nport


def test_mosquitto_sys_stats(bustap_bg: Callable[..., Bustap],
                             mosquitto_factory: Callable[..., Mosquitto]) -> None:
    m = mosquitto_factory(extra="allow_anonymous true\nsys_interval 1\nlog_dest topic")
    b = bustap_bg("capture", f"mosquitto-sys://127.0.0.1:{m.port}?quiet_secs=0.2")
    b.wait_ready()
    for i in range(5):
        mosquitto_pub(m.port, "t", str(i))
    recs = b.wait_for(lambda rs: len([r for r in rs if r.get("kind") == "stats"]) >= 3,
                      timeout=15)
    stats = [r for r in recs if r.get("kind") == "stats"]
    last = stats[-1]
    assert last["broker"] == "mosquitto" and last["version"].startswith("2.")
    assert last["clients_connected"] >= 1 and last["uptime_secs"] >= 0
    assert last["messages_received"] >= 5 and "messages_received_per_sec" in last
    info = _events(recs, "broker_info")
    assert info and info[0]["version"] == last["version"]
    # With log_dest topic the broker publishes its (non-debug) log lines on $SYS/broker/log/#.
    logged = [r for r in recs if str(r.get("sys_topic", "")).startswith("$SYS/broker/log/")]
    assert any(r["event"] == "client_connected" for r in logged)


def test_nats_monitor(bustap_bg: Callable[..., Bustap],
                      nats_factory: Callable[..., NatsServer]) -> None:
    server = nats_factory("authorization { users = [ {user: a, password: b} ] }")
    b = bustap_bg("capture", f"nats-monitor://127.0.0.1:{server.http_port}?interval_secs=0.2")
    b.wait_ready()
    import asyncio

    import nats

    async def drive() -> None:
        nc = await nats.connect(server.url, user="a", password="b", name="watched")
        for _ in range(10):
            await nc.publish("x", b"1")
        await nc.flush()
        await asyncio.sleep(0.8)
        await nc.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await reader.readline()
        writer.write(b'CONNECT {"user":"a","pass":"wrong"}\r\nPING\r\n')
        await writer.drain()
        await reader.readline()
        writer.close()
        await writer.wait_closed()

    asyncio.run(drive())
    recs = b.wait_for(lambda rs: bool(_events(rs, "auth_failed"))
                      and any(r.get("name") == "watched" for r in
                              _events(rs, "client_disconnected")), timeout=15)
    opened = [r for r in _events(recs, "client_connected") if r.get("name") == "watched"]
    assert opened and opened[0]["username"] == "a" and opened[0]["lang"] == "python3"
    gone = next(r for r in _events(recs, "client_disconnected") if r.get("name") == "watched")
    assert gone["reason"] == "client_closed"
    stats = [r for r in recs if r.get("kind") == "stats"]
    assert stats[0]["broker"] == "nats" and stats[0]["version"]
    assert max(int(s["in_msgs"]) for s in stats) >= 10
    assert any("in_msgs_per_sec" in s for s in stats)
    assert _events(recs, "broker_info")[0]["server_id"]
