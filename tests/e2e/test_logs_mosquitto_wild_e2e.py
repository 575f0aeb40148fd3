"""Mosquitto as it runs in the wild: a real bridge between two brokers, and a
broker with persistence, a websockets listener, a TLS listener that wants
client certificates, the dynamic security plugin, a packet size limit and a
queue limit. Their logs must parse into named events."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import wait_until
from tests.fixtures.brokers import Certs, Mosquitto, free_port

from bustap.logparse import parse_lines

pytestmark = pytest.mark.e2e

# Debian's mosquitto package ships the dynamic security plugin, per architecture
DYNSEC = next(iter(sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))),
              Path("/usr/lib/mosquitto_dynamic_security.so"))


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), capture_output=True, timeout=15, check=False)


def _text(b: Mosquitto) -> str:
    return b.log.read_text(errors="replace") if b.log.exists() else ""



def _find(recs: list[dict[str, Any]], **want: Any) -> dict[str, Any]:
    for r in recs:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    raise AssertionError(f"no record with {want}; events: {sorted({r['event'] for r in recs})}")


def _unparsed(recs: list[dict[str, Any]]) -> str:
    return "\n".join(r["line"] for r in recs if r["event"] == "unparsed")


def test_bridge_between_two_mosquittos(mosquitto_factory: Callable[..., Mosquitto]) -> None:
    cloud = mosquitto_factory(name="cloud")
    edge = mosquitto_factory(
        "allow_anonymous true\nconnection cloud\n"
        f"address 127.0.0.1:{cloud.port}\ntopic sensors/# out 1\ntopic cmd/# in 1\n"
        "restart_timeout 1\n", name="edge")
    wait_until(lambda: "Received SUBACK" in _text(edge), "the bridge up")
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(cloud.port), "-t", "sensors/#", "-C",
                            "1", "-W", "10"], stdout=subprocess.PIPE)
    wait_until(lambda: "sensors/# (QoS 0)" in _text(cloud), "the subscriber")
    _run("mosquitto_pub", "-p", str(edge.port), "-t", "sensors/t1", "-m", "21.5", "-q", "1")
    out, _ = sub.communicate(timeout=10)
    assert out == b"21.5\n"
    cloud.stop()  # the edge loses its bridge and retries
    wait_until(lambda: _text(edge).count("Connecting bridge") >= 3, "bridge retries")
    edge_recs = parse_lines(_text(edge).splitlines(), "mosquitto")
    cloud_recs = parse_lines(_text(cloud).splitlines(), "mosquitto")
    assert _find(edge_recs, event="bridge_connecting", bridge="cloud")["port"] == cloud.port
    connected = _find(edge_recs, event="bridge_connected")
    down = _find(edge_recs, event="bridge_disconnected")
    assert down["client_id"] == connected["client_id"] and down["reason"] == "closed"
    assert _find(edge_recs, event="bridge_subscribe", side="remote")["topic"] == "cmd/#"
    assert _find(edge_recs, event="bridge_subscribe", side="local")["topic"] == "sensors/#"
    inbound = _find(cloud_recs, event="client_connected", bridge=True)
    assert _find(cloud_recs, event="publish_in", client_id=inbound["client_id"],
                 topic="sensors/t1")["qos"] == 1
    recs = edge_recs + cloud_recs
    assert not _unparsed(recs), _unparsed(recs)


def test_limits_tls_dynsec_persistence(mosquitto_factory: Callable[..., Mosquitto],
                                       certs: Certs, tmp_path: Path) -> None:
    dynsec = tmp_path / "dynsec.json"
    _run("mosquitto_ctrl", "dynsec", "init", str(dynsec), "admin", "admin-password-1")
    dynsec.chmod(0o644)
    tls_port, ws_port = free_port(), free_port()
    broker = mosquitto_factory(
        f"persistence true\npersistence_location {tmp_path}/\nautosave_interval 1\n"
        "max_packet_size 1000\nmax_queued_messages 2\n"
        f"plugin {DYNSEC}\nplugin_opt_config_file {dynsec}\n"
        f"listener {ws_port} 127.0.0.1\nprotocol websockets\n"
        f"listener {tls_port} 127.0.0.1\ncafile {certs.ca}\ncertfile {certs.server_cert}\n"
        f"keyfile {certs.server_key}\nrequire_certificate true\n", name="wild")
    admin = ("-p", str(broker.port), "-u", "admin", "-P", "admin-password-1")
    for cmd in (("createRole", "sensors"),
                *(("addRoleACL", "sensors", kind, "q/#", "allow") for kind in (
                    "publishClientSend", "publishClientReceive", "subscribePattern")),
                ("createClient", "bob", "-p", "bob-password-22"),
                ("addClientRole", "bob", "sensors")):
        assert _run("mosquitto_ctrl", *admin, "dynsec", *cmd).returncode == 0
    bob = ("-p", str(broker.port), "-u", "bob", "-P", "bob-password-22")
    _run("mosquitto_pub", *bob, "-t", "q/big", "-m", "x" * 2000)  # over max_packet_size
    _run("mosquitto_sub", *bob, "-t", "q/#", "-q", "1", "-c", "-i", "slow", "-E")
    for _ in range(5):  # the offline session takes 2, the rest are dropped
        _run("mosquitto_pub", *bob, "-t", "q/x", "-m", "x", "-q", "1")
    ctx = ssl.create_default_context(cafile=str(certs.ca))  # no client certificate
    # TLS 1.2: the broker refuses the missing certificate inside the handshake
    # (with 1.3 it sees it after the client is done, and a client that closes
    # first leaves no OpenSSL error in the log)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def tls_without_certificate() -> bool:
        with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(b"\x10\x00")
                    tls.recv(10)
            except (ssl.SSLError, OSError):
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "OpenSSL Error" in _text(broker):
                return True
            time.sleep(0.1)
        return False

    assert any(tls_without_certificate() for _ in range(4)), "no TLS error logged"
    wait_until(lambda: "Saving in-memory database" in _text(broker), "an autosave")
    broker.stop()
    text = _text(broker)
    recs = parse_lines(text.splitlines(), "mosquitto")
    assert "bob-password-22" not in str([{k: v for k, v in r.items() if k != "line"}
                                         for r in recs])
    cmd = _find(recs, event="dynsec_command", command="createClient")
    assert (cmd["username"], cmd["admin_username"]) == ("bob", "admin")
    assert "password" not in cmd
    acl = _find(recs, event="dynsec_command", command="addRoleACL")
    assert (acl["rolename"], acl["topic"], acl["allow"]) == ("sensors", "q/#", "true")
    assert _find(recs, event="plugin_loaded")["plugin"] == str(DYNSEC)
    assert _find(recs, event="client_disconnected", reason="oversize_packet")["username"] == \
        "bob"
    assert _find(recs, event="messages_dropped")["client_id"] == "slow"
    assert _find(recs, event="tls_error")["error"]
    assert _find(recs, event="listener_opened", address_family="websockets")[
        "listener_port"] == ws_port
    assert _find(recs, event="persistence_saved")["path"].startswith(str(tmp_path))
    assert not _unparsed(recs), _unparsed(recs)
