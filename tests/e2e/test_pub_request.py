"""`bustap pub` and `bustap request` against real Mosquitto and nats-server."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import nats
import pytest
from tests.conftest import BUSTAP, Bustap, run_bustap
from tests.fixtures.brokers import Mosquitto, NatsServer, free_port, mosquitto_passwd

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]


def _pub(*args: str, input: bytes | None = None, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    res = run_bustap("pub", *args, input=input, env=env)
    assert res.returncode == 0, res.stderr
    return res


def test_mqtt_pub_qos_retain_and_mqtt5_properties(mosquitto: Mosquitto,
                                                   bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", mosquitto.url, "-t", "p/#", "-C", "3", "-q", "2")
    b.wait_ready()
    _pub(mosquitto.url, "-t", "p/one", "-m", '{"v": 1}', "-q", "1",
         "-D", "content-type", "application/json", "-D", "response-topic", "p/reply",
         "-D", "correlation-data", "abc", "-D", "message-expiry-interval", "60",
         "-H", "site:lab", "--user-property", "site", "rack2")
    _pub(mosquitto.url, "-t", "p/two", "-m", "x", "-q", "2")
    _pub(mosquitto.url, "-t", "p/empty", "-n")
    assert b.proc.wait(10) == 0, b.stderr()
    msgs = {r["topic"]: r for r in b.messages()}
    one = msgs["p/one"]
    assert one["qos"] == 1 and one["payload"] == {"v": 1}
    assert one["headers"] == {"site": ["lab", "rack2"]}
    props = one["properties"]
    assert props["content_type"] == "application/json"
    assert props["response_topic"] == "p/reply"
    assert base64.b64decode(props["correlation_data"]) == b"abc"
    assert 0 < props["message_expiry_interval"] <= 60
    assert msgs["p/two"]["qos"] == 2 and msgs["p/two"]["payload"] == "x"
    assert msgs["p/empty"]["size"] == 0


def test_mqtt_retained_then_cleared_with_null(mosquitto: Mosquitto) -> None:
    _pub(mosquitto.url, "-t", "cfg/state", "-m", "on", "-r", "-q", "1")
    got = run_bustap("capture", mosquitto.url, "-t", "cfg/#", "-C", "1", "-W", "5")
    assert '"retain":true' in got.stdout and '"payload":"on"' in got.stdout
    _pub(mosquitto.url, "-t", "cfg/state", "-n", "-r", "-q", "1")
    after = run_bustap("capture", mosquitto.url, "-t", "cfg/#", "-W", "1")
    assert '"kind":"message"' not in after.stdout


def test_mqtt_pub_lines_from_stdin(mosquitto: Mosquitto, bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", mosquitto.url, "-t", "lines", "-C", "3")
    b.wait_ready()
    _pub(mosquitto.url, "-t", "lines", "-l", "-q", "1", input=b"first\nsecond\r\n\n")
    assert b.proc.wait(10) == 0, b.stderr()
    assert [m["payload"] for m in b.messages()] == ["first", "second", ""]


def test_mqtt_pub_file_and_credentials(mosquitto_factory: Callable[..., Mosquitto],
                                       tmp_path: Path, bustap_bg: BgFactory) -> None:
    passwd = mosquitto_passwd(tmp_path / "passwd", {"ops": "s3cret-pw"})
    broker = mosquitto_factory(f"allow_anonymous false\npassword_file {passwd}")
    url = broker.url.replace("mqtt://", "mqtt://ops:s3cret-pw@")
    b = bustap_bg("capture", url, "-t", "f", "-C", "1")
    b.wait_ready()
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01\xff")
    _pub(broker.url, "-t", "f", "-f", str(blob), "-u", "ops", env={"BUSTAP_PASSWORD": "s3cret-pw"})
    assert b.proc.wait(10) == 0
    assert base64.b64decode(b.messages()[0]["payload"]) == b"\x00\x01\xff"
    bad = run_bustap("pub", broker.url.replace("mqtt://", "mqtt://ops:wrong-pw@"), "-t", "f",
                     "-m", "x")
    assert bad.returncode == 2 and "wrong-pw" not in bad.stderr
    assert "bad user name or password" in bad.stderr or "not authorised" in bad.stderr


def test_pub_refuses_bad_input_naming_it(mosquitto: Mosquitto) -> None:
    res = run_bustap("pub", mosquitto.url, "-t", "a/#", "-m", "x")
    assert res.returncode == 2 and "a/#" in res.stderr
    res = run_bustap("pub", mosquitto.url, "-t", "a", "-m", "x", "-D", "colour", "red")
    assert res.returncode == 2 and "colour" in res.stderr


def test_nats_pub_headers_and_reply(nats_server: NatsServer, bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", nats_server.url, "-t", "hm.>", "-C", "2")
    b.wait_ready()
    _pub(nats_server.url, "-t", "hm.agent.alert.a1", "-m", '{"id": "x"}',
         "-H", "Nats-Msg-Id: 42", "-H", "origin:ops", "--reply", "_INBOX.me")
    _pub(nats_server.url, "-t", "hm.lines", "-l", input=b"a\n")
    assert b.proc.wait(10) == 0, b.stderr()
    msgs = {r["topic"]: r for r in b.messages()}
    alert = msgs["hm.agent.alert.a1"]
    assert alert["reply"] == "_INBOX.me"
    assert alert["headers"]["Nats-Msg-Id"] in ("42", ["42"])
    assert alert["headers"]["origin"] in ("ops", ["ops"])
    assert msgs["hm.lines"]["payload"] == "a"


async def _bustap(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *BUSTAP, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=os.environ.copy())
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_request_reply_against_a_responder(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)

    async def director(msg: nats.aio.msg.Msg) -> None:
        # a BOSH agent answers the director's get_state with {"value": ...}
        trace = (msg.headers or {}).get("trace", "")
        await msg.respond(b'{"value":{"job_state":"running","trace":"' + trace.encode() + b'"}}')

    await nc.subscribe("agent.a1", cb=director)
    await nc.flush()
    try:
        code, out, err = await _bustap("request", nats_server.url, "agent.a1",
                                       '{"method":"get_state","arguments":[]}',
                                       "--timeout", "5", "-H", "trace:t-1")
        assert code == 0, err
        assert out == '{"value":{"job_state":"running","trace":"t-1"}}\n'
        code, out, err = await _bustap("request", nats_server.url, "--jsonl", "agent.a1", "{}")
        assert code == 0, err
        assert '"kind":"message"' in out and '"job_state":"running"' in out
        code, out, err = await _bustap("request", nats_server.url, "nobody.home", "x",
                                       "--timeout", "1")
        assert code == 2 and "nobody.home" in err
    finally:
        await nc.close()


def test_request_refuses_mqtt_and_names_a_dead_server(mosquitto: Mosquitto) -> None:
    res = run_bustap("request", mosquitto.url, "a", "b")
    assert res.returncode == 2 and "NATS" in res.stderr
    dead = f"nats://127.0.0.1:{free_port()}"
    res = run_bustap("request", dead, "a", "b", timeout=20)
    assert res.returncode == 2 and dead in res.stderr


def test_options_between_urls(mosquitto_factory: Callable[..., Mosquitto],
                              bustap_bg: BgFactory) -> None:
    # capture URL1 --opt URL2 used to stop with "unrecognized arguments"
    one, two = mosquitto_factory(name="m1"), mosquitto_factory(name="m2")
    b = bustap_bg("capture", one.url, "-t", "x", two.url, "-C", "2")
    b.wait_ready(2)
    _pub(one.url, "-t", "x", "-m", "1")
    _pub("-t", "x", two.url, "-m", "2")
    assert b.proc.wait(10) == 0, b.stderr()
    assert {m["source"] for m in b.messages()} == {one.url, two.url}


def test_owntracks_through_a_real_broker(mosquitto: Mosquitto, bustap_bg: BgFactory) -> None:
    # OwnTracks apps publish retained at QoS 1 by default; an old app's strings
    location = ('{"_type":"location","tid":"jn","tst":"1702297398","lat":"48.8584",'
                '"lon":"2.2945","acc":12,"batt":64,"t":"p"}')
    _pub(mosquitto.url, "-t", "owntracks/jane/iphone", "-m", location, "-q", "1", "-r")
    b = bustap_bg("capture", mosquitto.url, "-t", "owntracks/#", "-q", "1", "-C", "2")
    b.wait_ready()
    _pub(mosquitto.url, "-t", "owntracks/jane/iphone/event", "-q", "1", "-m",
         '{"_type":"transition","event":"enter","desc":"home","lat":48.85,"lon":2.29,'
         '"tst":1702297500,"acc":20,"t":"c","tid":"jn"}')
    assert b.proc.wait(10) == 0, b.stderr()
    loc, trans = b.messages()
    assert loc["retain"] is True and loc["decoder"] == "owntracks"
    assert loc["device"] == "jane/iphone" and loc["fields"]["lat"] == 48.8584
    assert trans["event"] == "enter" and trans["fields"]["summary"] == "enter home"


def test_sparkplug_through_a_real_broker(mosquitto: Mosquitto, bustap_bg: BgFactory,
                                         tmp_path: Path) -> None:
    from bustap.decode._sparkplug_schema import payload_class

    def blob(name: str, seq: int, metrics: list[dict[str, object]]) -> str:
        p = payload_class()(timestamp=1_700_000_000_000, seq=seq)
        for m in metrics:
            p.metrics.add(**m)
        path = tmp_path / name
        path.write_bytes(p.SerializeToString())
        return str(path)

    birth = blob("nbirth.bin", 0, [{"name": "bdSeq", "alias": 0, "datatype": 8,
                                    "long_value": 1},
                                   {"name": "Pressure", "alias": 5, "datatype": 9,
                                    "float_value": 1.25}])
    data = blob("ndata.bin", 1, [{"alias": 5, "datatype": 9, "float_value": 2.5}])
    b = bustap_bg("capture", mosquitto.url, "-t", "spBv1.0/#", "-q", "1", "-C", "2")
    b.wait_ready()
    _pub(mosquitto.url, "-t", "spBv1.0/Plant1/NBIRTH/Edge1", "-f", birth, "-q", "1")
    _pub(mosquitto.url, "-t", "spBv1.0/Plant1/NDATA/Edge1", "-f", data, "-q", "1")
    assert b.proc.wait(10) == 0, b.stderr()
    nbirth, ndata = b.messages()
    assert nbirth["decoder"] == "sparkplug-b" and nbirth["fields"]["metrics.Pressure"] == 1.25
    assert ndata["device"] == "Edge1" and ndata["fields"]["metrics.Pressure"] == 2.5
