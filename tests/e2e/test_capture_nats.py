"""`bustap capture` against real nats-server instances (Debian 2.9 and PyPI 2.15)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

import nats
import nkeys
import pytest
from tests.conftest import Bustap, run_bustap
from tests.fixtures.brokers import Certs, NatsServer, nats_server_binaries
from tests.fixtures.payloads import BOSH_HEARTBEAT, BOSH_HEARTBEAT_SUBJECT

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]
VERSIONS = sorted(nats_server_binaries().items())


async def _publish(url: str, msgs: list[tuple[str, bytes, dict[str, str] | None, str]],
                   **kwargs: object) -> None:
    nc = await nats.connect(url, **kwargs)  # type: ignore[arg-type]
    for subject, data, headers, reply in msgs:
        await nc.publish(subject, data, headers=headers, reply=reply)
    await nc.flush()
    await nc.close()


def publish(url: str, *msgs: tuple[str, bytes, dict[str, str] | None, str],
            **kwargs: object) -> None:
    asyncio.run(_publish(url, list(msgs), **kwargs))


@pytest.mark.parametrize(("version", "binary"), VERSIONS, ids=[v for v, _ in VERSIONS])
def test_subjects_headers_reply(version: str, binary: str,
                                nats_factory: Callable[..., NatsServer],
                                bustap_bg: BgFactory) -> None:
    server = nats_factory(binary=binary)
    b = bustap_bg("capture", server.url, "-t", "hm.agent.*.*", "-t", "agent.>", "-C", "3")
    b.wait_ready()
    init = b.records()[0]
    assert init["version"] == version and init["server_id"]
    publish(server.url,
            (BOSH_HEARTBEAT_SUBJECT, BOSH_HEARTBEAT.encode(), None, ""),
            ("agent.123", b'{"method":"ping"}', {"Nats-Msg-Id": "42"}, "director.x.123.y"),
            ("other.subject", b"ignored", None, ""),
            ("agent.123.deep", b"\xff\x00binary", None, ""))
    assert b.proc.wait(10) == 0, b.stderr()
    msgs = b.messages()
    assert [m["topic"] for m in msgs] == [BOSH_HEARTBEAT_SUBJECT, "agent.123", "agent.123.deep"]
    hb, rpc, binmsg = msgs
    assert hb["protocol"] == "nats" and hb["payload"] == json.loads(BOSH_HEARTBEAT)
    assert "qos" not in hb
    assert rpc["reply"] == "director.x.123.y" and rpc["headers"] == {"Nats-Msg-Id": "42"}
    assert binmsg["format"] == "binary"


def test_queue_group_splits_messages(nats_server: NatsServer, bustap_bg: BgFactory) -> None:
    a = bustap_bg("capture", nats_server.url, "-t", "work.>", "--queue", "taps", out="a.jsonl")
    b = bustap_bg("capture", nats_server.url, "-t", "work.>", "--queue", "taps", out="b.jsonl")
    a.wait_ready()
    b.wait_ready()
    publish(nats_server.url, *[(f"work.{i}", str(i).encode(), None, "") for i in range(200)])
    a.wait_for(lambda _: len(a.messages()) + len(b.messages()) >= 200)
    a.stop()
    b.stop()
    got_a = {m["payload"] for m in a.messages()}
    got_b = {m["payload"] for m in b.messages()}
    assert not got_a & got_b, "a queue group delivers each message once"
    assert got_a | got_b == set(range(200))
    assert got_a and got_b


def test_user_password_token_and_nkey(nats_factory: Callable[..., NatsServer],
                                      tmp_path: Path, bustap_bg: BgFactory) -> None:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(seed).public_key.decode()
    seed_file = tmp_path / "user.nk"
    seed_file.write_bytes(seed)
    server = nats_factory(
        'authorization { users = [ {user: "hm", password: "pa55word"}, '
        f'{{nkey: "{public}"}} ] }}')
    b = bustap_bg("capture", f"nats://hm:pa55word@127.0.0.1:{server.port}", "-C", "1",
                  out="pw.jsonl")
    b.wait_ready()
    publish(server.url, ("x.y", b"1", None, ""), user="hm", password="pa55word")
    assert b.proc.wait(10) == 0
    assert "pa55word" not in b.out.read_text()

    k = bustap_bg("capture", server.url, "--nkey", str(seed_file), "-C", "1", out="nk.jsonl")
    k.wait_ready()
    publish(server.url, ("x.z", b"2", None, ""), user="hm", password="pa55word")
    assert k.proc.wait(10) == 0
    assert k.messages()[0]["topic"] == "x.z"

    bad = run_bustap("capture", server.url, "-u", "hm", "-P", "nope-nope", "-C", "1")
    assert bad.returncode == 2 and "Authorization Violation" in bad.stderr
    assert "nope-nope" not in bad.stderr and bad.stderr.count("\n") == 1


def test_token_auth(nats_factory: Callable[..., NatsServer], bustap_bg: BgFactory) -> None:
    server = nats_factory('authorization { token: "t0ken-s3cret" }')
    b = bustap_bg("capture", f"nats://t0ken-s3cret@127.0.0.1:{server.port}", "-C", "1")
    b.wait_ready()
    assert all("t0ken" not in json.dumps(r) for r in b.records())
    publish(server.url, ("tok.x", b"ok", None, ""), token="t0ken-s3cret")
    assert b.proc.wait(10) == 0
    bad = run_bustap("capture", server.url, "--token", "wrong", "-C", "1")
    assert bad.returncode == 2 and "wrong" not in bad.stderr.replace("bustap: error", "")


def test_tls_client_certificates(nats_factory: Callable[..., NatsServer], certs: Certs,
                                 bustap_bg: BgFactory) -> None:
    server = nats_factory(
        f'tls {{ cert_file: "{certs.server_cert}", key_file: "{certs.server_key}", '
        f'ca_file: "{certs.ca}", verify: true }}')
    url = f"tls://127.0.0.1:{server.port}"
    tls = ("--tlsca", str(certs.ca), "--tlscert", str(certs.client_cert), "--tlskey",
           str(certs.client_key))
    b = bustap_bg("capture", url, *tls, "-t", "hm.agent.>", "-C", "1")
    b.wait_ready()
    assert b.records()[0]["tls"] is True
    import ssl

    ctx = ssl.create_default_context(cafile=str(certs.ca))
    ctx.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    publish(url, (BOSH_HEARTBEAT_SUBJECT, BOSH_HEARTBEAT.encode(), None, ""), tls=ctx)
    assert b.proc.wait(10) == 0
    assert b.messages()[0]["payload"]["job"] == "nfs_server"

    no_cert = run_bustap("capture", url, "--tls-ca", str(certs.ca), "-C", "1")
    assert no_cert.returncode == 2 and "Traceback" not in no_cert.stderr
    wrong_ca = run_bustap("capture", url, "--tls-ca", str(certs.other_ca), "-C", "1")
    assert wrong_ca.returncode == 2 and "certificate verification failed" in wrong_ca.stderr


def test_subscription_permission_violation(nats_factory: Callable[..., NatsServer]) -> None:
    server = nats_factory(
        'authorization { users = [ {user: "hm", password: "pw", permissions: '
        '{ subscribe: ["hm.agent.>"] } } ] }')
    res = run_bustap("capture", f"nats://hm:pw@127.0.0.1:{server.port}", "-t", ">", "-C", "1")
    assert res.returncode == 2
    assert 'permissions violation for subscription to ">"' in res.stderr.lower()
    assert res.stderr.count("\n") == 1


def test_reconnect_after_server_restart(nats_server: NatsServer, bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", nats_server.url, "-t", "rc.>")
    b.wait_ready()
    publish(nats_server.url, ("rc.1", b"before", None, ""))
    b.wait_for(lambda rs: any(r.get("payload") == "before" for r in rs))
    nats_server.restart()
    b.wait_ready(2, timeout=20)
    publish(nats_server.url, ("rc.2", b"after", None, ""))
    recs = b.wait_for(lambda rs: any(r.get("payload") == "after" for r in rs))
    kinds = [r["event_type"] for r in recs]
    i = kinds.index("log_close")
    assert kinds[i + 1] == "log_init"


def test_mixed_protocols_merge_into_one_sequence(nats_server: NatsServer, mosquitto,  # type: ignore[no-untyped-def]
                                                 bustap_bg: BgFactory) -> None:
    from tests.fixtures.brokers import mosquitto_pub

    b = bustap_bg("capture", nats_server.url, mosquitto.url, "-t", "mix.>", "-t", "mix/#",
                  "-C", "2")
    b.wait_ready(2)
    publish(nats_server.url, ("mix.n", b"from-nats", None, ""))
    mosquitto_pub(mosquitto.port, "mix/m", "from-mqtt")
    assert b.proc.wait(10) == 0, b.stderr()
    recs = b.records()
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert len({r["writer_id"] for r in recs}) == 1
    assert {m["payload"] for m in b.messages()} == {"from-nats", "from-mqtt"}


@pytest.mark.parametrize(("version", "binary"), VERSIONS, ids=[v for v, _ in VERSIONS])
def test_creds_file_decentralised_auth(version: str, binary: str, tmp_path: Path,
                                       nats_factory: Callable[..., NatsServer],
                                       bustap_bg: BgFactory) -> None:
    from tests.fixtures import natsjwt

    auth = natsjwt.make(tmp_path / "jwt")
    server = nats_factory(auth.server_config, binary=binary)
    b = bustap_bg("capture", server.url, "--creds", str(auth.creds), "-t", "telemetry.>",
                  "-C", "1")
    b.wait_ready()
    publish(server.url, ("telemetry.a", b"signed", None, ""),
            user_credentials=str(auth.creds))
    assert b.proc.wait(10) == 0, b.stderr()
    assert b.messages()[0]["payload"] == "signed"
    assert auth.user_seed not in b.out.read_text() + b.stderr()
    anon = run_bustap("capture", server.url, "-C", "1")
    assert anon.returncode == 2 and "Authorization Violation" in anon.stderr


def test_workers_keep_order_seq_and_decoding(nats_server: NatsServer,
                                             bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", nats_server.url, "-t", "hm.>", "--workers", "2", "-C", "3000")
    b.wait_ready()
    beat = json.loads(BOSH_HEARTBEAT)
    publish(nats_server.url, *[(BOSH_HEARTBEAT_SUBJECT, json.dumps(dict(beat, index=i)).encode(),
                                None, "") for i in range(3000)])
    assert b.proc.wait(30) == 0
    recs = b.records()
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    msgs = [r for r in recs if r.get("kind") == "message"]
    assert [r["fields"]["index"] for r in msgs] == list(range(3000))
    assert {r["decoder"] for r in msgs} == {"bosh-heartbeat"}
    assert msgs[0]["fields"]["cpu.user"] == float(beat["vitals"]["cpu"]["user"])


def test_stalled_sink_pauses_reading_instead_of_dropping(nats_server: NatsServer,
                                                         tmp_path: Path) -> None:
    """nats-py reads whatever arrives; with the pipeline stalled (a TCP peer that
    does not read) bustap stops reading the socket instead of letting nats-py
    drop more than its 65,536 pending messages as a slow consumer."""
    import socket
    import subprocess
    import threading
    import time

    from tests.conftest import BUSTAP

    n = 100_000
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = bytearray()
    stalled = threading.Event()

    def peer() -> None:
        conn, _ = listener.accept()
        stalled.wait(30)  # do not read until the flood has been published
        while chunk := conn.recv(1 << 20):
            received.extend(chunk)
        conn.close()

    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    err = tmp_path / "stderr"
    with err.open("wb") as errf:
        proc = subprocess.Popen([*BUSTAP, "capture", nats_server.url, "-t", "flood", "-C",
                                 str(n), "-o", f"tcp://127.0.0.1:{port}"], stderr=errf)
    try:
        time.sleep(1.5)
        publish(nats_server.url, *[("flood", b"%d" % i, None, "") for i in range(n)])
        time.sleep(1.0)
        stalled.set()
        assert proc.wait(60) == 0, err.read_text()
    finally:
        stalled.set()
        if proc.poll() is None:
            proc.kill()
        listener.close()
    thread.join(10)
    recs = [json.loads(line) for line in bytes(received).splitlines()]
    assert not [r for r in recs if r.get("reason") == "slow_consumer"]
    assert [r["payload"] for r in recs if r.get("kind") == "message"] == list(range(n))


def test_workers_stop_gracefully_on_ctrl_c_to_the_group(nats_server: NatsServer,
                                                        tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from tests.conftest import BUSTAP, read_records

    out, err = tmp_path / "out.jsonl", tmp_path / "stderr"
    with err.open("wb") as errf:
        proc = subprocess.Popen([*BUSTAP, "capture", nats_server.url, "-t", "g.>", "--workers",
                                 "2", "-o", str(out)], stderr=errf, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not any(r["event_type"] == "log_init" for r in read_records(out)):
            assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
            time.sleep(0.05)
        publish(nats_server.url, *[("g.x", b'{"i": %d}' % i, None, "") for i in range(20_000)])
        while sum(r.get("kind") == "message" for r in read_records(out)) < 1000:
            assert time.monotonic() < deadline + 20, err.read_text()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        assert proc.wait(30) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    recs = read_records(out)
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert recs[-1]["event_type"] == "log_close"
    got = [r["payload"]["i"] for r in recs if r.get("kind") == "message"]
    assert got == list(range(len(got))) and got
    assert "worker process failed" not in err.read_text()
