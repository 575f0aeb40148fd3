"""Alerts from what real brokers do and log: a Mosquitto with passwords, an
ACL and a verbose log tailed by bustap; a nats-server with an authorization
block like seed 002's. Each detector fires once per group with evidence
pointing at the records behind it, resolves when the condition clears, a
restart does not re-fire, and ``bustap logs`` over the same log raises what
the live run raised. Outputs: a webhook that is up, one that is down, NATS."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import BUSTAP, Bustap, read_records, run_bustap, wait_until
from tests.fixtures.brokers import (
    Certs,
    Mosquitto,
    NatsServer,
    free_port,
    mosquitto_passwd,
    nats_server_binaries,
)

pytestmark = pytest.mark.e2e

RULES = """
[detect]
learn_secs = 0
resolve_secs = 3
throttle_secs = 600
admins = ["bustap*", "ops"]
plaintext_credentials = {{ tls_ports = [{tls_port}] }}
"""


def alerts(recs: list[dict[str, Any]], state: str = "firing") -> list[dict[str, Any]]:
    return [r for r in recs if r.get("event_type") == "alert" and r["state"] == state]


def by_rule(recs: list[dict[str, Any]], rule: str, state: str = "firing"
            ) -> list[dict[str, Any]]:
    return [a for a in alerts(recs, state) if a["rule"] == rule]


def evidence(recs: list[dict[str, Any]], alert: dict[str, Any]) -> list[dict[str, Any]]:
    seqs = set(alert["evidence"])
    return [r for r in recs if r["seq"] in seqs]


def _connect_packet(client_id: str, user: str, password: str) -> bytes:
    def s(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    body = (s(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60) + s(client_id.encode())
            + s(user.encode()) + s(password.encode()))
    return bytes([0x10, len(body)]) + body


def guess_passwords(port: int, n: int) -> None:
    """What MQTTSA's brute force does: a new connection and CONNECT per guess."""
    for i in range(n):
        with socket.create_connection(("127.0.0.1", port), 5) as sock:
            sock.sendall(_connect_packet(f"guess{i}", "alice", f"password{i}"))
            sock.recv(16)  # CONNACK 5 (not authorised)


def pub(port: int, *args: str) -> None:
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), *args],
                   capture_output=True, timeout=10, check=False)


def sub(port: int, *args: str, secs: int = 1) -> None:
    subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-W", str(secs),
                    *args], capture_output=True, timeout=10, check=False)


@pytest.fixture
def locked_mosquitto(mosquitto_factory: Callable[..., Mosquitto], certs: Certs,
                     tmp_path: Path) -> tuple[Mosquitto, int]:
    pw = mosquitto_passwd(tmp_path / "passwd", {"alice": "secret", "ops": "opspw",
                                                "bustap": "tap"})
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite sensors/#\n\nuser ops\ntopic readwrite #\n\n"
                   "user bustap\ntopic read #\n")
    acl.chmod(0o644)
    tls_port = free_port()
    return mosquitto_factory(extra=(
        f"allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n"
        f"listener {tls_port} 127.0.0.1\ncafile {certs.ca}\ncertfile {certs.server_cert}\n"
        f"keyfile {certs.server_key}\n")), tls_port



def test_mosquitto_attacks_raise_each_detector_once_then_resolve(
        locked_mosquitto: tuple[Mosquitto, int], bustap_bg: Callable[..., Bustap],
        tmp_path: Path) -> None:
    m, tls_port = locked_mosquitto
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(tls_port=tls_port))
    env = {"BUSTAP_STATE_DIR": str(tmp_path / "state")}
    log_url = f"file://{m.log}?format=mosquitto&from_start=true&state=none&poll_secs=0.05"
    store = tmp_path / "store.duckdb"
    b = bustap_bg("capture", f"mqtt://bustap:tap@127.0.0.1:{m.port}", log_url, "-i",
                  "bustap-e2e", "--rules", str(rules), "-o", str(store), "-W", "14", env=env)
    b.wait_ready(2)
    port = m.port
    guess_passwords(port, 6)
    pub(port, "-u", "alice", "-P", "secret", "-i", "cam-7", "-t", "other/x", "-m", "1")
    pub(port, "-u", "alice", "-P", "secret", "-i", "cam-7", "-t", "$SYS/x", "-m", "1")
    sub(port, "-u", "alice", "-P", "secret", "-i", "scanner", "-t", "#")
    sub(port, "-u", "ops", "-P", "opspw", "-i", "ops-console", "-t", "#")  # an admin
    holder = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-u",
                               "alice", "-P", "secret", "-i", "plc-4", "-t", "sensors/#"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: "plc-4 0 sensors/#" in m.log.read_text(), what="plc-4 subscribed")
        sub(port, "-u", "alice", "-P", "secret", "-i", "plc-4", "-t", "sensors/#")
    finally:
        holder.kill()
        holder.wait()
    assert b.proc.wait(30) == 0
    recs = b.records()
    fired = {a["rule"] for a in alerts(recs)}
    assert {"auth_failure_burst", "acl_denied", "dollar_topic_publish", "wildcard_subscription",
            "plaintext_credentials", "client_takeover", "broker_version"} <= fired, fired
    # once per group, evidence pointing at the broker's own lines
    (burst,) = by_rule(recs, "auth_failure_burst")
    assert burst["subject"] == "127.0.0.1" and burst["count"] == 5
    assert {r["event"] for r in evidence(recs, burst)} == {"auth_failed"}
    denied = by_rule(recs, "acl_denied")
    assert sorted(a["group"]["topic"] for a in denied) == ["$SYS/x", "other/x"]
    for a in denied:
        (ev,) = evidence(recs, a)
        assert ev["event"] == "acl_denied" and ev["topic"] == a["group"]["topic"]
    (wild,) = by_rule(recs, "wildcard_subscription")  # not ops-console, not bustap itself
    assert wild["subject"] == "scanner"
    (take,) = by_rule(recs, "client_takeover")
    assert take["subject"] == "plc-4" and evidence(recs, take)[0]["reason"] == "takeover"
    (plain,) = by_rule(recs, "plaintext_credentials")  # one listener, three users
    assert plain["group"] == {"broker": "mosquitto", "listener_port": m.port}
    (last,) = by_rule(recs, "plaintext_credentials", "resolved")
    assert last["count"] >= 3 and "users: bustap, alice, ops" in last["summary"]
    assert len(by_rule(recs, "broker_version")) == 1
    assert "anonymous_access" not in fired
    # cleared for resolve_secs: resolved, except the broker's version
    resolved = {a["rule"] for a in alerts(recs, "resolved")}
    assert {"acl_denied", "wildcard_subscription", "auth_failure_burst"} <= resolved
    assert "broker_version" not in resolved
    assert "ALERT [warning] auth_failure_burst" in b.stderr()
    assert "secret" not in b.stderr() and "password0" not in json.dumps(alerts(recs))
    # the store keeps them; `bustap alerts` exits 1 while broker_version fires
    shown = run_bustap("alerts", "--store", str(store), "--format", "json")
    assert shown.returncode == 1, shown.stderr
    assert [json.loads(x)["rule"] for x in shown.stdout.splitlines()] == ["broker_version"]
    table = run_bustap("alerts", "--store", str(store), "--state", "all")
    assert "auth_failure_burst" in table.stdout and "resolved" in table.stdout
    # the same log read afterwards raises the same alerts
    offline = run_bustap("logs", str(m.log), "--rules", str(rules))
    assert offline.returncode == 0, offline.stderr
    off = [json.loads(x) for x in offline.stdout.splitlines()]
    live_set = {(a["rule"], a["subject"]) for a in alerts(recs)}
    off_set = {(a["rule"], a["subject"]) for a in alerts(off)}
    assert off_set == live_set


def test_a_restart_does_not_refire(locked_mosquitto: tuple[Mosquitto, int],
                                   bustap_bg: Callable[..., Bustap], tmp_path: Path) -> None:
    m, tls_port = locked_mosquitto
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(tls_port=tls_port).replace("resolve_secs = 3",
                                                             "resolve_secs = 600"))
    env = {"BUSTAP_STATE_DIR": str(tmp_path / "state")}
    # the log offset is kept in the state directory too: the restart resumes
    log_url = f"file://{m.log}?format=mosquitto&from_start=true&poll_secs=0.05"
    args = ("capture", log_url, "--rules", str(rules), "--name", "tap1")
    first = bustap_bg(*args, out="first.jsonl", env=env)
    first.wait_ready()
    guess_passwords(m.port, 5)
    first.wait_for(lambda rs: bool(by_rule(rs, "auth_failure_burst")))
    assert first.stop() == 0
    second = bustap_bg(*args, out="second.jsonl", env=env)
    second.wait_ready()
    guess_passwords(m.port, 3)  # the same burst goes on
    second.wait_for(lambda rs: sum(r.get("event") == "auth_failed" for r in rs) >= 3)
    time.sleep(1.5)
    assert second.stop() == 0
    assert alerts(second.records()) == [], [a["rule"] for a in alerts(second.records())]
    state = json.loads((tmp_path / "state" / "alerts-tap1.json").read_text())
    (burst,) = [a for a in state["active"] if a["rule"] == "auth_failure_burst"]
    assert burst["count"] == 8


def test_a_clean_tls_run_raises_only_the_version_finding(
        mosquitto_factory: Callable[..., Mosquitto], certs: Certs, tmp_path: Path,
        bustap_bg: Callable[..., Bustap]) -> None:
    pw = mosquitto_passwd(tmp_path / "passwd", {"tap": "tappw", "sensor": "sensorpw"})
    tls_port = free_port()
    m = mosquitto_factory(extra=(
        f"allow_anonymous false\npassword_file {pw}\n"
        f"listener {tls_port} 127.0.0.1\ncafile {certs.ca}\ncertfile {certs.server_cert}\n"
        f"keyfile {certs.server_key}\n"))
    rules = tmp_path / "rules.toml"
    rules.write_text(f"[detect]\nplaintext_credentials = {{ tls_ports = [{tls_port}] }}\n")
    log_url = f"file://{m.log}?format=mosquitto&from_start=true&state=none&poll_secs=0.05"
    b = bustap_bg("capture", f"mqtts://tap:tappw@127.0.0.1:{tls_port}", log_url, "--tls-ca",
                  str(certs.ca), "--rules", str(rules), "-W", "5",
                  env={"BUSTAP_STATE_DIR": str(tmp_path / "state")})
    b.wait_ready(2)
    for i in range(10):  # a steady sensor, over TLS with its password
        pub(tls_port, "--cafile", str(certs.ca), "-u", "sensor", "-P", "sensorpw", "-i",
            "sensor-1", "-t", "sensors/t1", "-m", str(20 + i))
    assert b.proc.wait(30) == 0
    recs = b.records()
    assert len([r for r in recs if r.get("kind") == "message"]) == 10
    assert [a["rule"] for a in alerts(recs)] == ["broker_version"]


SEED_002_AUTH = """
authorization {{
  DIRECTOR = {{ publish: ["agent.*", "hm.director.alert"], subscribe: ["director.>"] }}
  AGENT = {{ publish: ["hm.agent.heartbeat.agent1", "director.*.agent1.>"],
             subscribe: ["agent.agent1"] }}
  users = [
    {{ user: director, password: dirpw, permissions: $DIRECTOR }}
    {{ user: agent1, password: a1pw, permissions: $AGENT }}
    {{ user: tap, password: tappw }}
  ]
}}
"""


# Run as its own process: nats-py leaves the sockets of refused connections to
# the garbage collector, which pytest (rightly) reports as unclosed.
NATS_TROUBLE = """
import asyncio, sys
import nats

async def main(port):
    async def quiet(_):
        pass
    for i in range(6):
        try:
            await nats.connect(f"nats://agent1:wrong{i}@127.0.0.1:{port}", allow_reconnect=False,
                               max_reconnect_attempts=0, connect_timeout=2, error_cb=quiet)
        except Exception:
            pass
        else:
            sys.exit("a wrong password was accepted")
    nc = await nats.connect(f"nats://agent1:a1pw@127.0.0.1:{port}", name="agent-1",
                            error_cb=quiet)
    await nc.publish("hm.agent.heartbeat.agent1", b'{"job":"redis"}')
    await nc.publish("hm.agent.heartbeat.agent2", b'{"job":"spoofed"}')  # someone else's
    await nc.subscribe(">")
    await nc.flush()
    await asyncio.sleep(0.3)
    await nc.close()

asyncio.run(main(int(sys.argv[1])))
"""


@pytest.mark.parametrize("version", sorted(nats_server_binaries()))
def test_nats_authorization_like_seed_002(version: str, tmp_path: Path,
                                          nats_factory: Callable[..., NatsServer],
                                          bustap_bg: Callable[..., Bustap]) -> None:
    server = nats_factory(SEED_002_AUTH.format(), binary=nats_server_binaries()[version],
                          args=("-DV",))
    log_url = f"file://{server.log}?format=nats&from_start=true&state=none&poll_secs=0.05"
    b = bustap_bg("capture", f"nats://tap:tappw@127.0.0.1:{server.port}", log_url, "-W", "6",
                  env={"BUSTAP_STATE_DIR": str(tmp_path / "state")})
    b.wait_ready(2)
    subprocess.run([sys.executable, "-c", NATS_TROUBLE, str(server.port)], check=True,
                   capture_output=True, timeout=30)
    assert b.proc.wait(30) == 0
    recs = b.records()
    pv = by_rule(recs, "permission_violation")
    assert sorted((a["group"]["action"], a["group"]["topic"]) for a in pv) == [
        ("publish", "hm.agent.heartbeat.agent2"), ("subscribe", ">")]
    for a in pv:
        (ev,) = evidence(recs, a)
        assert ev["event"] == "acl_denied" and ev["topic"] == a["group"]["topic"]
        assert a["subject"] == "agent-1"  # the connection name, not cid:N
    (burst,) = [a for a in by_rule(recs, "auth_failure_burst")
                if a["group"] == {"username": "agent1"}]
    assert burst["count"] == 5
    (wild,) = by_rule(recs, "wildcard_subscription")
    assert wild["subject"] == "agent-1"
    versions = by_rule(recs, "broker_version")
    outdated = tuple(int(x) for x in version.split(".")[:2]) < (2, 12)
    assert bool(versions) == outdated, versions
    assert by_rule(recs, "acl_denied") == []


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


def _burst_log(path: Path, n: int = 6) -> Path:
    lines = []
    for i in range(n):
        lines += [f"1796125870: New connection from 10.9.8.7:{40000 + i} on port 1883.",
                  "1796125870: Sending CONNACK to 10.9.8.7 (0, 5)",
                  "1796125870: Client <unknown> disconnected, not authorised."]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_outputs_webhook_nats_and_one_that_is_down(
        webhook: tuple[str, list[dict[str, Any]]], nats_server: NatsServer,
        tmp_path: Path) -> None:
    import nats

    url, received = webhook
    log = _burst_log(tmp_path / "m.log")
    down = f"http://127.0.0.1:{free_port()}/nobody"
    got: list[dict[str, Any]] = []

    async def listen_and_run() -> subprocess.CompletedProcess[str]:
        nc = await nats.connect(nats_server.url)

        async def on_msg(msg: Any) -> None:
            got.append({**json.loads(msg.data), "nats_subject": msg.subject})

        await nc.subscribe("alerts.>", cb=on_msg)
        await nc.flush()
        started = time.monotonic()
        done = await asyncio.to_thread(
            run_bustap, "logs", str(log), "-o", str(tmp_path / "out.jsonl"),
            "--alert-output", url, "--alert-output", down, "--alert-output",
            f"{nats_server.url}?subject=alerts.{{rule}}.{{subject}}", "--alert-output",
            "console")
        assert time.monotonic() - started < 15  # the dead webhook does not hold it up
        await asyncio.sleep(0.3)
        await nc.close()
        return done

    done = asyncio.run(listen_and_run())
    assert done.returncode == 0, done.stderr
    assert [(a["rule"], a["state"]) for a in received] == [("auth_failure_burst", "firing")]
    assert received[0]["evidence"] and received[0]["seq"] >= 0
    assert [g["nats_subject"] for g in got] == ["alerts.auth_failure_burst.10_9_8_7"]
    assert "alert output http://127.0.0.1" in done.stderr and "retrying" in done.stderr
    assert "ALERT [warning] auth_failure_burst" in done.stderr
    out = read_records(tmp_path / "out.jsonl")
    assert sum(r.get("event") == "auth_failed" for r in out) == 6


def test_bad_rules_and_outputs_fail_at_start(tmp_path: Path) -> None:
    log = _burst_log(tmp_path / "m.log")
    rules = tmp_path / "bad.toml"
    rules.write_text("[[rule]]\nid = 'disk'\nwhere = \"fields.x >\"\n")
    r = run_bustap("logs", str(log), "--rules", str(rules))
    assert r.returncode == 2 and "rule 'disk'" in r.stderr and "unexpected end" in r.stderr
    r = run_bustap("logs", str(log), "--alert-output", "smtp://mail")
    assert r.returncode == 2 and "unknown alert output" in r.stderr
    r = run_bustap("logs", str(log), "--no-detect")
    assert r.returncode == 0 and "ALERT" not in r.stderr


def test_alerts_test_runs_rules_over_a_store_without_writing(tmp_path: Path) -> None:
    log = _burst_log(tmp_path / "m.log", n=7)
    store = tmp_path / "s.duckdb"
    filled = run_bustap("logs", str(log), "-o", str(store), "--no-detect")
    assert filled.returncode == 0, filled.stderr
    rules = tmp_path / "rules.toml"
    rules.write_text("[detect]\nauth_failure_burst = { count = 3, within_secs = 10 }\n"
                     "[[rule]]\nid = 'refused'\nwhere = \"event = 'auth_failed' and "
                     "extra.rc = 5\"\ngroup_by = ['address']\nsummary = 'refused {address}'\n")
    tried = run_bustap("alerts", "--test", str(rules), "--store", str(store), "--format",
                       "json")
    assert tried.returncode == 0, tried.stderr
    got = {(a["rule"], a["subject"], a["count"]) for a in map(json.loads,
                                                             tried.stdout.splitlines())}
    assert got >= {("auth_failure_burst", "10.9.8.7", 7), ("refused", "10.9.8.7", 7)}
    assert "nothing written" in run_bustap("alerts", "--test", str(rules), "--store",
                                           str(store)).stderr
    after = run_bustap("alerts", "--store", str(store))
    assert after.returncode == 0 and "no alerts" in after.stderr  # the store is untouched


def test_bustap_run_with_detect_and_rules_in_its_config(tmp_path: Path) -> None:
    log = _burst_log(tmp_path / "m.log")
    cfg = tmp_path / "tap.toml"
    cfg.write_text(f'name = "tap9"\n[[source]]\nurl = "file://{log}?format=mosquitto'
                   '&from_start=true&state=none"\n[[sink]]\nurl = "'
                   f'{tmp_path / "out.jsonl"}"\n[detect]\noutputs = []\n'
                   "[[rule]]\nid = 'any_refusal'\nwhere = \"event = 'auth_failed'\"\n")
    ran = run_bustap("run", str(cfg), "-W", "3",
                     env={"BUSTAP_STATE_DIR": str(tmp_path / "state")})
    assert ran.returncode == 0, ran.stderr
    assert "ALERT" not in ran.stderr  # outputs = []: the sink has them
    recs = read_records(tmp_path / "out.jsonl")
    assert {a["rule"] for a in alerts(recs)} >= {"auth_failure_burst", "any_refusal"}
    assert (tmp_path / "state" / "alerts-tap9.json").exists()


def test_alerts_follow_prints_new_notifications(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    env = {"BUSTAP_STATE_DIR": str(tmp_path / "state")}
    assert run_bustap("logs", str(_burst_log(tmp_path / "a.log")), "-o", str(store),
                      env=env).returncode == 0
    follow = subprocess.Popen([*BUSTAP, "alerts", "--follow", "--store", str(store),
                               "--state", "all", "--format", "json"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert follow.stdout is not None
        first = json.loads(follow.stdout.readline())
        assert first["rule"] == "auth_failure_burst"
        log = tmp_path / "b.log"
        log.write_text("1796125870: mosquitto version 2.0.11 starting\n")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the store is free between two polls
            if run_bustap("logs", str(log), "-o", str(store), env=env).returncode == 0:
                break
            time.sleep(0.3)
        rules = []
        while "broker_version" not in rules:
            rules.append(json.loads(follow.stdout.readline())["rule"])
    finally:
        follow.terminate()
        follow.wait(10)
        if follow.stdout is not None:
            follow.stdout.close()
