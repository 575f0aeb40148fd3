"""A real Mosquitto with passwords, an ACL and a TLS listener writes its log;
the scenarios users chart by hand must come out as events with their fields."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import run_bustap
from tests.fixtures.brokers import Certs, Mosquitto, free_port, mosquitto_passwd

from bustap.logparse import parse_lines

pytestmark = pytest.mark.e2e


def _client(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), capture_output=True, timeout=timeout, check=False)


def _connect_packet(client_id: str, keepalive: int, user: str, password: str) -> bytes:
    def s(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    body = (s(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keepalive) + s(client_id.encode())
            + s(user.encode()) + s(password.encode()))
    return bytes([0x10, len(body)]) + body


def _wait_log(log: Path, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in log:\n{content[-3000:]}")


def _find(recs: list[dict[str, Any]], **want: Any) -> dict[str, Any]:
    for r in recs:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    raise AssertionError(f"no record with {want}; events: "
                         f"{[(r['event'], r.get('client_id')) for r in recs]}")


@pytest.fixture
def broker(mosquitto_factory: Callable[..., Mosquitto], certs: Certs, tmp_path: Path
           ) -> tuple[Mosquitto, int]:
    pw = mosquitto_passwd(tmp_path / "passwd", {"alice": "secret", "bob": "hunter2"})
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite sensors/#\ntopic read #\n\n"
                   "user bob\ntopic write sensors/bob\n")
    acl.chmod(0o644)
    tls_port = free_port()
    extra = (f"allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n"
             f"listener {tls_port} 127.0.0.1\ncafile {certs.ca}\ncertfile {certs.server_cert}\n"
             f"keyfile {certs.server_key}\n")
    return mosquitto_factory(extra=extra), tls_port


def test_scenarios_from_a_real_broker(broker: tuple[Mosquitto, int], certs: Certs) -> None:
    m, tls_port = broker
    port = str(m.port)
    pub = ["mosquitto_pub", "-h", "127.0.0.1", "-p", port]
    # A '#' subscriber with a will, kept open while the others run.
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-u", "alice",
                            "-P", "secret", "-i", "watcher", "-t", "#", "-q", "1",
                            "--will-topic", "sensors/watcher/status", "--will-payload", "gone",
                            "--will-retain"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        _wait_log(m.log, "watcher 1 #")
        assert _client(*pub, "-u", "alice", "-P", "secret", "-i", "good", "-t", "sensors/t",
                       "-m", "21.5", "-q", "1").returncode == 0
        assert _client(*pub, "-u", "alice", "-P", "wrong", "-i", "badpw", "-t", "sensors/t",
                       "-m", "x").returncode != 0
        assert _client(*pub, "-i", "anon", "-t", "sensors/t", "-m", "x").returncode != 0
        _client(*pub, "-u", "bob", "-P", "hunter2", "-i", "bob1", "-t", "secret/plans", "-m",
                "x", "-q", "1")
        # TLS client on the plain port, plain client on the TLS port.
        _client(*pub, "--cafile", str(certs.ca), "-i", "tls-on-plain", "-t", "a", "-m", "x")
        _client("mosquitto_pub", "-h", "127.0.0.1", "-p", str(tls_port), "-u", "alice", "-P",
                "secret", "-i", "plain-on-tls", "-t", "a", "-m", "x")
        assert _client("mosquitto_pub", "-h", "127.0.0.1", "-p", str(tls_port), "--cafile",
                       str(certs.ca), "-u", "alice", "-P", "secret", "-i", "tls-ok", "-t",
                       "sensors/tls", "-m", "x").returncode == 0
        # Keepalive timeout: CONNECT with keepalive 1, then silence.
        with socket.create_connection(("127.0.0.1", m.port)) as s:
            s.sendall(_connect_packet("sleepy", 1, "alice", "secret"))
            assert s.recv(4)[:1] == b"\x20"
            _wait_log(m.log, "Client sleepy has exceeded timeout")
        # Client-id takeover: a second "watcher" pushes the first out.
        _client("mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-u", "alice", "-P", "secret",
                "-i", "watcher", "-t", "sensors/#", "-W", "1")
    finally:
        sub.terminate()
        sub.wait(5)
    text = _wait_log(m.log, "Client watcher disconnected.")
    recs = parse_lines(text.splitlines(), "auto")
    assert recs and all(r["broker"] == "mosquitto" for r in recs)

    assert _find(recs, event="broker_started")["version"].startswith("2.")
    assert _find(recs, event="listener_opened", listener_port=tls_port)
    c = _find(recs, event="client_connected", client_id="good")
    assert (c["username"], c["listener_port"], c["address"], c["protocol_version"],
            c["clean_session"], c["keepalive"]) == ("alice", m.port, "127.0.0.1", "3.1.1",
                                                     True, 60)
    assert isinstance(c["port"], int)
    p = _find(recs, event="publish_in", client_id="good")
    assert (p["topic"], p["qos"], p["bytes"], p["username"], p["listener_port"]) == (
        "sensors/t", 1, 4, "alice", m.port)
    fails = [r for r in recs if r["event"] == "auth_failed"]
    assert len(fails) == 2  # wrong password and anonymous, one each
    assert all(f["address"] == "127.0.0.1" and f["listener_port"] == m.port and f["port"]
               for f in fails)
    assert {f["reason"] for f in fails} == {"not authorised"}
    denied = _find(recs, event="acl_denied", client_id="bob1")
    assert (denied["topic"], denied["username"], denied["qos"]) == ("secret/plans", "bob", 1)
    s = _find(recs, event="subscribe", client_id="watcher", topic="#")
    assert s["qos"] == 1 and s["username"] == "alice" and "\n" in s["line"]
    w = _find(recs, event="will", client_id="watcher")
    assert (w["will"], w["topic"], w["retain"]) == (True, "sensors/watcher/status", True)
    assert _find(recs, event="client_disconnected", reason="protocol_error",
                 listener_port=m.port)  # TLS hello on the plain port
    tls = _find(recs, event="tls_error")
    assert tls["address"] == "127.0.0.1" and "SSL" in tls["error"]
    assert _find(recs, event="client_connected", client_id="tls-ok")["listener_port"] == tls_port
    t = _find(recs, event="client_disconnected", client_id="sleepy")
    assert (t["reason"], t["address"], t["username"]) == ("timeout", "127.0.0.1", "alice")
    take = _find(recs, event="client_disconnected", client_id="watcher", reason="takeover")
    assert take["address"] == "127.0.0.1" and take["new_port"] != take["port"]
    assert _find(recs, event="publish_out", client_id="watcher", topic="sensors/t")
    # Nothing unknown in what a 2.0 broker wrote for these scenarios.
    assert [r["line"] for r in recs if r["event"] == "unparsed"] == []


def test_bustap_logs_command(mosquitto: Mosquitto, tmp_path: Path) -> None:
    _client("mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-i", "cli",
            "-t", "a/b", "-m", "x")
    text = _wait_log(mosquitto.log, "Client cli disconnected.")
    out = tmp_path / "events.jsonl"
    res = run_bustap("logs", str(mosquitto.log), "-o", str(out))
    assert res.returncode == 0, res.stderr
    from tests.conftest import read_records

    recs = read_records(out)
    assert recs[0]["event_type"] == "log_init" and recs[-1]["event_type"] == "log_close"
    events = [r for r in recs if r.get("kind") == "broker_event"]
    assert len(events) == len(text.splitlines())
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert _find(events, event="publish_in", client_id="cli")["topic"] == "a/b"
    res = run_bustap("logs", str(tmp_path / "missing.log"))
    assert res.returncode == 2 and "no such file" in res.stderr
