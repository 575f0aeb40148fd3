"""Logs of real nats-server topologies on loopback, with Debian's 2.9 and
PyPI's 2.12+: a 3-node JetStream cluster that loses a node, a leafnode, a
gateway and a slow consumer. Their lines must parse into named events, and
what stays ``unparsed`` is only what no rule names yet (printed on failure)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.conftest import wait_until
from tests.fixtures.brokers import NatsServer, free_port, nats_server_binaries

from bustap.logparse import parse_lines

pytestmark = pytest.mark.e2e

# Leafnodes and gateways together need a system account (2.10+).
SYS = 'accounts { SYS: { users: [{ user: sys, password: "sys-pw" }] } }\nsystem_account: SYS\n'
BINARIES = sorted(nats_server_binaries().items())
IDS = [v for v, _ in BINARIES]



def _text(server: NatsServer) -> str:
    return server.log.read_text(errors="replace") if server.log.exists() else ""


def _records(*servers: NatsServer) -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = []
    for s in servers:
        recs += parse_lines(_text(s).splitlines(), "nats")
    return recs


def _events(recs: list[dict[str, Any]]) -> set[str]:
    return {r["event"] for r in recs}


def _find(recs: list[dict[str, Any]], **want: Any) -> dict[str, Any]:
    for r in recs:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    raise AssertionError(f"no record with {want}; events: {sorted(_events(recs))}")


def _share(recs: list[dict[str, Any]]) -> float:
    return sum(r["event"] != "unparsed" for r in recs) / max(len(recs), 1)


def _unparsed(recs: list[dict[str, Any]]) -> str:
    return "\n".join(r["line"] for r in recs if r["event"] == "unparsed")


@pytest.mark.parametrize(("version", "binary"), BINARIES, ids=IDS)
async def test_jetstream_cluster(nats_factory: Callable[..., NatsServer], tmp_path: Path,
                                 version: str, binary: str) -> None:
    ports = [free_port() for _ in range(3)]
    routes = ", ".join(f"nats://127.0.0.1:{p}" for p in ports)
    servers = []
    for i, port in enumerate(ports):
        conf = (f'server_name: "n{i}"\n'
                f'jetstream {{ store_dir: "{tmp_path / f"js{i}"}", max_mem: 64MB, '
                f'max_file: 256MB }}\n'
                f'cluster {{ name: "c1", listen: "127.0.0.1:{port}", routes: [{routes}] }}\n')
        servers.append(nats_factory(conf, binary=binary, args=("-D",), name=f"n{i}"))
    wait_until(lambda: any("new metadata leader" in _text(s) or "Self is new" in _text(s)
                           for s in servers), "a meta leader")
    nc = await nats.connect(servers[0].url)
    js = nc.jetstream()
    for _ in range(50):  # the meta group may need a moment after the election
        try:
            await js.add_stream(name="ORDERS", subjects=["orders.>"], num_replicas=3)
            break
        except Exception:
            await asyncio.sleep(0.2)
    await js.add_consumer("ORDERS", durable_name="billing")
    for i in range(20):
        await js.publish("orders.new", b"%d" % i)
    await js.delete_consumer("ORDERS", "billing")
    await js.delete_stream("ORDERS")
    await nc.close()
    servers[2].stop()  # the others log the route closing, RAFT and perhaps a new leader
    wait_until(lambda: "connection closed" in _text(servers[0]).lower(), "route closed")
    servers[0].stop()
    servers[0].start()  # a restart recovers JetStream state from the store directory
    wait_until(lambda: _text(servers[0]).count("Server is ready") >= 2, "restart")
    time.sleep(1.0)
    recs = _records(*servers)
    events = _events(recs)
    for event in ("jetstream_enabled", "jetstream_limits", "jetstream_store_dir",
                  "jetstream_cluster_started", "meta_leader_elected", "route_connected",
                  "route_closed", "cluster_name", "raft_state"):
        assert event in events, (event, _unparsed(recs))
    limits = _find(recs, event="jetstream_limits", max_memory="64.00 MB")
    assert limits["max_memory_bytes"] == 64 * 1024 * 1024
    assert _find(recs, event="jetstream_store_dir")["store_dir"].startswith(str(tmp_path))
    assert _find(recs, event="route_connected")["conn_kind"] == "route"
    assert _find(recs, event="raft_state")["raft_group"]
    assert _find(recs, event="cluster_name")["cluster"] == "c1"
    if tuple(map(int, version.split("."))) >= (2, 10):
        assert "jetstream_api_level" in events
    assert _share(recs) > 0.97, _unparsed(recs)


@pytest.mark.parametrize(("version", "binary"), BINARIES, ids=IDS)
async def test_leafnode_and_gateway(nats_factory: Callable[..., NatsServer], version: str,
                                    binary: str) -> None:
    leaf_port, gw_east, gw_west = free_port(), free_port(), free_port()
    hub = nats_factory(SYS + 'server_name: "hub"\n'
                       f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}\n'
                       f'gateway {{ name: "east", listen: "127.0.0.1:{gw_east}", gateways: ['
                       f'{{ name: "west", url: "nats://127.0.0.1:{gw_west}" }}] }}\n',
                       binary=binary, args=("-D",), name="hub")
    leaf = nats_factory(f'server_name: "leaf"\nleafnodes {{ remotes: [{{ url: '
                        f'"nats://127.0.0.1:{leaf_port}" }}] }}\n', binary=binary,
                        args=("-D",), name="leaf")
    west = nats_factory(SYS + f'server_name: "west"\ngateway {{ name: "west", listen: '
                        f'"127.0.0.1:{gw_west}", gateways: [{{ name: "east", url: '
                        f'"nats://127.0.0.1:{gw_east}" }}] }}\n', binary=binary, args=("-D",),
                        name="west")
    wait_until(lambda: "registered" in _text(west)
               and "Leafnode connection created" in _text(hub), "gateway and leafnode up")
    leaf.stop()  # the hub logs the leafnode closing
    wait_until(lambda: "Leafnode connection closed" in _text(hub), "leafnode closed")
    recs = _records(hub, leaf, west)
    events = _events(recs)
    for event in ("leafnode_connected", "leafnode_closed", "gateway_connected",
                  "gateway_connecting", "gateway_name", "listener_opened"):
        assert event in events, (event, _unparsed(recs))
    assert {r.get("direction") for r in recs if r["event"] == "gateway_connected"} >= {
        "inbound", "outbound"}
    assert _find(recs, event="gateway_connected", direction="outbound")["gateway"] in (
        "east", "west")
    assert _find(recs, event="listener_opened", listener="leafnode")["listener_port"] == \
        leaf_port
    assert _share(recs) > 0.97, _unparsed(recs)


@pytest.mark.parametrize(("version", "binary"), BINARIES, ids=IDS)
async def test_slow_consumer_and_reload(nats_factory: Callable[..., NatsServer], version: str,
                                        binary: str) -> None:
    server = nats_factory('write_deadline: "300ms"\n', binary=binary, args=("-D",))
    # A subscriber that never reads, with a small receive buffer.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.recv(4096)
    sock.sendall(b'CONNECT {"verbose":false}\r\nSUB flood.> 1\r\nPING\r\n')
    time.sleep(0.2)
    nc = await nats.connect(server.url)
    payload = b"x" * 65536
    try:
        for _ in range(60):
            for _ in range(50):
                await nc.publish("flood.x", payload)
            await nc.flush()
            if "Slow Consumer" in _text(server):
                break
    finally:
        await nc.close()
        sock.close()
    wait_until(lambda: "Slow Consumer" in _text(server), "a slow consumer line")
    assert server.proc is not None
    server.proc.send_signal(1)  # SIGHUP: reload
    wait_until(lambda: "Reloaded" in _text(server), "reload")
    recs = _records(server)
    slow = _find(recs, event="slow_consumer")
    assert slow["limit"] in ("write_deadline", "max_pending")
    if slow["limit"] == "write_deadline":
        assert slow["deadline_secs"] == 0.3 and slow["pending_bytes"] > 0
    assert slow["client_id"].startswith("cid:")
    assert "config_reloaded" in _events(recs)
    assert _find(recs, event="signal")["signal"] == "hangup"
    assert _share(recs) > 0.97, _unparsed(recs)
