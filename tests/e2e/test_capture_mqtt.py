"""`bustap capture` against real Mosquitto brokers started on free ports."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Bustap, read_records, run_bustap
from tests.fixtures.brokers import Certs, Mosquitto, mosquitto_passwd, mosquitto_pub
from tests.fixtures.payloads import JET_LINK_DOWN, JET_LINK_DOWN_TOPIC

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]


def test_plain_capture_keeps_every_payload(mosquitto: Mosquitto, bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", mosquitto.url, "-t", "t/#", "-C", "5")
    b.wait_ready()
    mosquitto_pub(mosquitto.port, "t/json", '{"x": 1}')
    mosquitto_pub(mosquitto.port, "t/num", "23.0")
    mosquitto_pub(mosquitto.port, "t/bin", b"\xff\xfe\x00\x01")
    mosquitto_pub(mosquitto.port, "t/text", "hello wörld")
    mosquitto_pub(mosquitto.port, "t/badjson", '{"x": ')
    assert b.proc.wait(10) == 0
    recs = b.records()
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert recs[0]["event_type"] == "log_init" and recs[-1]["event_type"] == "log_close"
    msgs = {r["topic"]: r for r in b.messages()}
    assert msgs["t/json"]["payload"] == {"x": 1} and msgs["t/json"]["format"] == "json"
    assert msgs["t/num"]["payload"] == 23.0 and msgs["t/num"]["decoder"] == "number"
    assert msgs["t/bin"]["format"] == "binary"
    assert base64.b64decode(msgs["t/bin"]["payload"]) == b"\xff\xfe\x00\x01"
    assert msgs["t/text"]["payload"] == "hello wörld" and msgs["t/text"]["size"] == 12
    assert msgs["t/badjson"]["format"] == "text" and msgs["t/badjson"]["payload"] == '{"x": '
    for r in recs:
        assert r["writer_id"].startswith("bustap/")
        assert r["timestamp"].endswith("Z") and r["source"] == mosquitto.url


def test_retained_and_mqtt5_properties(mosquitto: Mosquitto, bustap_bg: BgFactory) -> None:
    mosquitto_pub(mosquitto.port, "r/state", "on", args=("-r", "-q", "1"))
    b = bustap_bg("capture", mosquitto.url, "-t", "r/#", "-t", "p/#", "-C", "2")
    b.wait_ready()
    mosquitto_pub(mosquitto.port, "p/props", '{"v": 2}', args=(
        "-V", "mqttv5", "-D", "publish", "user-property", "site", "lab",
        "-D", "publish", "user-property", "site", "rack2",
        "-D", "publish", "content-type", "application/json",
        "-D", "publish", "response-topic", "p/reply",
        "-D", "publish", "correlation-data", "abc",
        "-D", "publish", "message-expiry-interval", "60"))
    assert b.proc.wait(10) == 0, b.stderr()
    msgs = {r["topic"]: r for r in b.messages()}
    assert msgs["r/state"]["retain"] is True and msgs["r/state"]["payload"] == "on"
    p = msgs["p/props"]
    assert p["retain"] is False
    assert p["headers"] == {"site": ["lab", "rack2"]}
    props = p["properties"]
    assert props["content_type"] == "application/json"
    assert props["response_topic"] == "p/reply"
    assert base64.b64decode(props["correlation_data"]) == b"abc"
    assert 0 < props["message_expiry_interval"] <= 60


def test_password_auth_and_refusals(mosquitto_factory: Callable[..., Mosquitto],
                                    tmp_path: Path, bustap_bg: BgFactory) -> None:
    pw = mosquitto_passwd(tmp_path / "passwd", {"alice": "s3cret-pw"})
    broker = mosquitto_factory(f"allow_anonymous false\npassword_file {pw}")
    b = bustap_bg("capture", f"mqtt://alice:s3cret-pw@127.0.0.1:{broker.port}", "-C", "1")
    b.wait_ready()
    mosquitto_pub(broker.port, "a/b", "x", args=("-u", "alice", "-P", "s3cret-pw"))
    assert b.proc.wait(10) == 0
    assert all("s3cret" not in json.dumps(r) for r in b.records())

    wrong = run_bustap("capture", broker.url, "-u", "alice", "-P", "wrong-pw", "-C", "1")
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1, wrong.stderr
    # Mosquitto 2.0 answers a wrong password with "not authorised" (0x87), not 0x86.
    assert broker.url in wrong.stderr and "connection refused: not authorised" in wrong.stderr
    assert "wrong-pw" not in wrong.stderr + wrong.stdout

    anon = run_bustap("capture", broker.url, "-C", "1")
    assert anon.returncode == 2 and "not authori" in anon.stderr

    env = run_bustap("capture", broker.url, "-u", "alice", "-W", "0.5",
                     env={"BUSTAP_PASSWORD": "s3cret-pw"})
    assert env.returncode == 0, env.stderr


def test_tls_server_verification(mosquitto_factory: Callable[..., Mosquitto], certs: Certs,
                                 bustap_bg: BgFactory) -> None:
    broker = mosquitto_factory(
        f"allow_anonymous true\ncafile {certs.ca}\ncertfile {certs.server_cert}\n"
        f"keyfile {certs.server_key}")
    url = f"mqtts://127.0.0.1:{broker.port}"
    b = bustap_bg("capture", url, "--tls-ca", str(certs.ca), "-C", "1")
    b.wait_ready()
    assert b.records()[0]["tls"] is True and b.records()[0]["tls_version"].startswith("TLS")
    mosquitto_pub(broker.port, "s/1", "secure", args=("--cafile", str(certs.ca)))
    assert b.proc.wait(10) == 0
    assert b.messages()[0]["payload"] == "secure"

    bad = run_bustap("capture", url, "--tls-ca", str(certs.other_ca), "-C", "1")
    assert bad.returncode == 2 and "certificate verification failed" in bad.stderr
    assert bad.stderr.count("\n") == 1
    plain = run_bustap("capture", f"mqtt://127.0.0.1:{broker.port}", "-C", "1",
                       "--connect-timeout", "2")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr


def test_tls_client_certificate_required(mosquitto_factory: Callable[..., Mosquitto],
                                         certs: Certs, bustap_bg: BgFactory) -> None:
    broker = mosquitto_factory(
        f"allow_anonymous true\ncafile {certs.ca}\ncertfile {certs.server_cert}\n"
        f"keyfile {certs.server_key}\nrequire_certificate true")
    url = f"mqtts://127.0.0.1:{broker.port}"
    no_cert = run_bustap("capture", url, "--tls-ca", str(certs.ca), "-C", "1")
    assert no_cert.returncode == 2 and "Traceback" not in no_cert.stderr
    assert no_cert.stderr.startswith("bustap: error: " + url)
    b = bustap_bg("capture", url, "--tls-ca", str(certs.ca), "--tls-cert",
                  str(certs.client_cert), "--tls-key", str(certs.client_key), "-C", "1")
    b.wait_ready()
    mosquitto_pub(broker.port, "c/1", "mutual", args=(
        "--cafile", str(certs.ca), "--cert", str(certs.client_cert),
        "--key", str(certs.client_key)))
    assert b.proc.wait(10) == 0
    assert b.messages()[0]["payload"] == "mutual"


def test_reconnect_after_broker_restart(mosquitto: Mosquitto, bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", mosquitto.url, "-t", "rc/#")
    b.wait_ready()
    mosquitto_pub(mosquitto.port, "rc/1", "before")
    b.wait_for(lambda rs: any(r.get("payload") == "before" for r in rs))
    mosquitto.restart()
    b.wait_ready(2, timeout=20)
    mosquitto_pub(mosquitto.port, "rc/2", "after")
    recs = b.wait_for(lambda rs: any(r.get("payload") == "after" for r in rs))
    b.stop()
    kinds = [r["event_type"] for r in recs]
    first_close = kinds.index("log_close")
    assert kinds[first_close + 1] == "log_init"
    assert recs[first_close]["reason"]
    assert [r["seq"] for r in b.records()] == list(range(len(b.records())))


def test_persistent_session_qos1_loses_nothing_across_kill(
        mosquitto_factory: Callable[..., Mosquitto], bustap_bg: BgFactory, tmp_path: Path
) -> None:
    # Mosquitto queues at most max_queued_messages (default 1000) for an
    # offline session: raise it so that only bustap is under test.
    mosquitto = mosquitto_factory("allow_anonymous true\nmax_queued_messages 100000")
    args = ("capture", mosquitto.url, "-t", "q/#", "--qos", "1", "--session", "tap-q1")
    b = bustap_bg(*args)
    b.wait_ready()
    lines = "\n".join(f"m{i}" for i in range(2000))
    (tmp_path / "lines").write_text(lines + "\n")
    import subprocess

    with (tmp_path / "lines").open("rb") as stdin:
        pub = subprocess.Popen(["mosquitto_pub", "-p", str(mosquitto.port), "-t", "q/x", "-q",
                                "1", "-l"], stdin=stdin)
    b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) >= 200, 20)
    b.proc.send_signal(signal.SIGKILL)  # no flush, no goodbye
    b.proc.wait()
    pub.wait(20)
    b2 = bustap_bg(*args, out="out.jsonl")  # same file: append
    b2.wait_for(lambda rs: len({r.get("payload") for r in rs if r.get("kind") == "message"})
                >= 2000, 30)
    b2.stop()
    got = {r["payload"] for r in read_records(b2.out) if r.get("kind") == "message"}
    assert got == {f"m{i}" for i in range(2000)}


def test_duckdb_staged_records_survive_kill(
        mosquitto_factory: Callable[..., Mosquitto], bustap_bg: BgFactory, tmp_path: Path
) -> None:
    """QoS 1 into DuckDB acks once a batch is staged on disk: after kill -9 the
    staged files are loaded at the next start, so nothing acked is lost."""
    import subprocess

    import duckdb

    mosquitto = mosquitto_factory("allow_anonymous true\nmax_queued_messages 100000")
    db = tmp_path / "tap.duckdb"
    # loads only at a row group or at exit: staged files are still there at the kill
    args = ("capture", mosquitto.url, "-t", "q/#", "--qos", "1", "--session", "tap-dq",
            "-o", f"{db}?flush_secs=600")
    b = bustap_bg(*args)
    b.wait_ready()
    (tmp_path / "lines").write_text("\n".join(f"m{i}" for i in range(3000)) + "\n")
    with (tmp_path / "lines").open("rb") as stdin:
        pub = subprocess.Popen(["mosquitto_pub", "-p", str(mosquitto.port), "-t", "q/x", "-q",
                                "1", "-l"], stdin=stdin)
    b.wait_for(lambda rs: sum(r.get("kind") == "message" for r in rs) >= 300, 20)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    assert list((tmp_path / "tap.duckdb.staging").glob("*.json"))
    pub.wait(20)
    b2 = bustap_bg(*args, out="out.jsonl")
    # the killed run may have written every message already: wait for this one
    # to be up (its log_init after the first's) before stopping it
    b2.wait_ready(2)
    b2.wait_for(lambda rs: len({r.get("payload") for r in rs if r.get("kind") == "message"})
                >= 3000, 30)
    assert b2.stop() == 0
    con = duckdb.connect(str(db), read_only=True)
    got = {row[0] for row in con.execute(
        "SELECT payload->>'$' FROM records WHERE kind = 'message'").fetchall()}
    con.close()
    assert got == {f"m{i}" for i in range(3000)}
    assert not (tmp_path / "tap.duckdb.staging").exists()


def test_junos_event_payload_from_seed(mosquitto: Mosquitto, bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", mosquitto.url, "-t", "/junos/events/#", "-C", "1")
    b.wait_ready()
    mosquitto_pub(mosquitto.port, JET_LINK_DOWN_TOPIC, JET_LINK_DOWN)
    assert b.proc.wait(10) == 0
    m = b.messages()[0]
    assert m["topic"] == JET_LINK_DOWN_TOPIC
    assert m["payload"] == json.loads(JET_LINK_DOWN)
    assert m["size"] == len(JET_LINK_DOWN.encode())


def test_exclude_timeout_and_views(mosquitto: Mosquitto, bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", mosquitto.url, "-t", "v/#", "-T", "v/noise/#", "-W", "3")
    b.wait_ready()
    mosquitto_pub(mosquitto.port, "v/noise/a", "no")
    mosquitto_pub(mosquitto.port, "v/keep", "yes")
    started = time.monotonic()
    assert b.proc.wait(10) == 0
    assert time.monotonic() - started < 8
    assert [m["topic"] for m in b.messages()] == ["v/keep"]

    import subprocess
    import sys

    pretty = subprocess.Popen([sys.executable, "-m", "bustap.cli", "capture", mosquitto.url,
                               "-t", "v/#", "--pretty", "-C", "1"], stdout=subprocess.PIPE,
                              text=True)
    raw = subprocess.Popen([sys.executable, "-m", "bustap.cli", "capture", mosquitto.url,
                            "-t", "v/#", "--raw", "-C", "1"], stdout=subprocess.PIPE)
    time.sleep(1.5)
    mosquitto_pub(mosquitto.port, "v/bin", b"\x00\xffraw")
    out, _ = pretty.communicate(timeout=10)
    assert "v/bin" in out and "binary" in out
    rout, _ = raw.communicate(timeout=10)
    assert rout == b"\x00\xffraw\n"


@pytest.mark.parametrize(("args", "needle"), [
    (["mqtt://127.0.0.1:1", "-C", "1"], "mqtt://127.0.0.1:1: "),
    (["mqtt://127.0.0.1:1883", "-t", "a/#/b"], "invalid MQTT filter 'a/#/b'"),
    (["mqtt://127.0.0.1:1883", "--qos", "1", "-t", "$share/g"], "$share"),
    (["mqtt://127.0.0.1:1883", "-C", "0"], "-C/--count"),
    (["nosuch://h", "-C", "1"], "unknown source"),
    (["mqtt://u:hunter2@127.0.0.1:1", "-C", "1"], "mqtt://127.0.0.1:1"),
    (["mqtts://127.0.0.1:1", "--tls-ca", "/nonexistent.pem"], "--tls-ca: no such file"),
])
def test_bad_input_exits_2_with_one_line(args: list[str], needle: str) -> None:
    res = run_bustap("capture", *args, timeout=20)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "hunter2" not in res.stderr


def test_run_config_with_decode_rule(mosquitto: Mosquitto, tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    cfg = tmp_path / "bustap.toml"
    cfg.write_text(f'name = "cfgtap"\n[[source]]\nurl = "{mosquitto.url}"\n'
                   f'topics = ["sensors/#"]\n[[sink]]\nurl = "{out}"\n'
                   '[[decode.rules]]\nfilter = "sensors/+/temperature"\ndecoder = "number"\n'
                   'device = "topic[1]"\n')
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "bustap.cli", "run", str(cfg), "-W", "4"])
    deadline = time.monotonic() + 10
    while not read_records(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    mosquitto_pub(mosquitto.port, "sensors/greenhouse-3/temperature", "21.5")
    assert proc.wait(15) == 0
    msg = next(r for r in read_records(out) if r.get("kind") == "message")
    assert msg["writer_id"] == "bustap/cfgtap"
    assert msg["device"] == "greenhouse-3" and msg["payload"] == 21.5


def test_reader_going_away_ends_quietly(mosquitto: Mosquitto) -> None:
    """`bustap capture ... | head -1` ends like `mosquitto_sub | head -1`."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "bustap.cli", "capture", mosquitto.url,
                             "-t", "h/#", "-W", "20"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert b"log_init" in proc.stdout.readline()  # like head -1
    proc.stdout.close()
    for i in range(5):
        mosquitto_pub(mosquitto.port, "h/x", str(i))
        time.sleep(0.1)
    assert proc.wait(10) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_huge_binary_payload_is_kept_whole(mosquitto: Mosquitto, bustap_bg: BgFactory,
                                           tmp_path: Path) -> None:
    blob = os.urandom(10_000_000)
    b = bustap_bg("capture", mosquitto.url, "-t", "big/#", "-C", "2")
    b.wait_ready()
    mosquitto_pub(mosquitto.port, "big/bin", blob)
    mosquitto_pub(mosquitto.port, "big/json", ("[" + "1," * 3_000_000 + "1]").encode())
    assert b.proc.wait(30) == 0, b.stderr()
    msgs = {m["topic"]: m for m in b.messages()}
    assert base64.b64decode(msgs["big/bin"]["payload"]) == blob
    big_json = msgs["big/json"]
    assert big_json["format"] == "text" and "not parsed" in big_json["decode_error"]
