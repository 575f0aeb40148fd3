"""Decoders end to end: seed payloads published through real Mosquitto and
nats-server, captured by the real ``bustap capture`` command."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from typing import Any

import nats
import orjson
import pytest
from tests.conftest import BUSTAP, Bustap
from tests.fixtures.brokers import Mosquitto, NatsServer, mosquitto_pub
from tests.fixtures.decode_samples import AGENT, HB_AGENT, REPLY_SUBJECT, junos_seeds, seed

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]
JUNOS_EVENTS = ["SYSTEM", "SYSTEM", "UI_COMMIT_PROGRESS", "UI_COMMIT_COMPLETED",
                "UI_COMMIT_PROGRESS", "PIC", "SNMP_TRAP_LINK_DOWN"]
SYSLOG_LINE = ("<28>Aug 28 09:30:51 vmx4 mib2d[4086]: SNMP_TRAP_LINK_DOWN: ifIndex 529, "
               "ifAdminStatus down(2), ifOperStatus down(2), ifName ge-0/0/1.0")


def by_topic(msgs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["topic"]: m for m in msgs}


def test_mqtt_payloads_are_decoded(mosquitto: Mosquitto, bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", mosquitto.url, "-t", "#", "-C", "13")
    b.wait_ready()
    for i, (payload, event) in enumerate(zip(junos_seeds(), JUNOS_EVENTS, strict=True)):
        mosquitto_pub(mosquitto.port, f"/junos/events/syslog/{event}/{i}", payload)
    mosquitto_pub(mosquitto.port, "pmacct/bgp", seed("pmacct/bgp_log_update.json"))
    mosquitto_pub(mosquitto.port, "logs/vmx4", SYSLOG_LINE)
    mosquitto_pub(mosquitto.port, "/junos/events/syslog/BROKEN", junos_seeds()[6][:120])
    mosquitto_pub(mosquitto.port, "dev/blob", "hello", args=(
        "-V", "mqttv5", "-D", "publish", "content-type", "application/octet-stream"))
    mosquitto_pub(mosquitto.port, "dev/text", '{"a": 1}', args=(
        "-V", "mqttv5", "-D", "publish", "content-type", "text/plain"))
    mosquitto_pub(mosquitto.port, "dev/utf8", b"caf\xc3\xa9", args=(
        "-V", "mqttv5", "-D", "publish", "payload-format-indicator", "1"))
    assert b.proc.wait(20) == 0, b.stderr()
    msgs = by_topic(b.messages())
    assert len(msgs) == 13

    for i, event in enumerate(JUNOS_EVENTS):
        m = msgs[f"/junos/events/syslog/{event}/{i}"]
        assert (m["decoder"], m["device"], m["event"]) == ("junos-jet", "vmx4", event)
        assert "decode_error" not in m
    down = msgs["/junos/events/syslog/SNMP_TRAP_LINK_DOWN/6"]
    assert down["severity"] == "warning"
    assert down["fields"]["interface-name"] == "ge-0/0/1.0"
    assert down["fields"]["admin-status"] == "down(2)"
    assert down["fields"]["process-name"] == "mib2d"
    assert down["fields"]["summary"].startswith("SNMP_TRAP_LINK_DOWN on ge-0/0/1.0: ")
    assert msgs["/junos/events/syslog/UI_COMMIT_COMPLETED/3"]["severity"] == "warning"
    assert msgs["/junos/events/syslog/PIC/5"]["severity"] == "debug"

    pm = msgs["pmacct/bgp"]
    assert (pm["decoder"], pm["device"], pm["event"]) == ("pmacct", "192.0.2.1", "log")
    assert pm["fields"]["ip_prefix"] == "198.51.100.0/24"

    sl = msgs["logs/vmx4"]
    assert (sl["decoder"], sl["device"], sl["event"], sl["severity"]) == (
        "syslog", "vmx4", "mib2d", "warning")
    assert sl["fields"]["facility"] == "daemon"

    broken = msgs["/junos/events/syslog/BROKEN"]
    assert broken["decode_error"].startswith("junos-jet: payload is not JSON")
    assert broken["format"] == "text"
    assert broken["payload"] == junos_seeds()[6][:120].decode()

    blob = msgs["dev/blob"]
    assert (blob["format"], blob["decoder"], blob["payload"]) == ("binary", "binary",
                                                                  "aGVsbG8=")
    assert blob["properties"]["content_type"] == "application/octet-stream"
    text = msgs["dev/text"]
    assert (text["format"], text["payload"]) == ("text", '{"a": 1}')
    assert msgs["dev/utf8"]["payload"] == "café"


async def _publish(url: str, msgs: list[tuple[str, bytes]]) -> None:
    nc = await nats.connect(url)
    for subject, data in msgs:
        await nc.publish(subject, data)
    await nc.flush()
    await nc.close()


def test_nats_bosh_and_pmacct_are_decoded(nats_server: NatsServer,
                                          bustap_bg: BgFactory) -> None:
    b = bustap_bg("capture", nats_server.url, "-t", ">", "-C", "10")
    b.wait_ready()
    ssh_subject = f"agent.{AGENT}"
    asyncio.run(_publish(nats_server.url, [
        (f"hm.agent.heartbeat.{HB_AGENT}", seed("bosh/heartbeat.json")),
        ("hm.agent.alert.a1", seed("bosh/alert.json")),
        ("hm.agent.shutdown.a2", b""),
        (f"agent.{AGENT}", seed("bosh/rpc_get_state.json")),
        ("agent.ssh-target", seed("bosh/rpc_ssh_setup.json")),
        ("agent.logs-target", seed("bosh/rpc_fetch_logs.json")),
        ("agent.settings-target", seed("bosh/rpc_update_settings.json")),
        (REPLY_SUBJECT, seed("bosh/director_reply_truncated.json")),
        ("director.d.agent9.r1", seed("bosh/director_reply_ping.json")),
        ("pmacct.telemetry", seed("pmacct/telemetry_gpb.json")),
    ]))
    assert b.proc.wait(20) == 0, b.stderr()
    msgs = by_topic(b.messages())
    assert len(msgs) == 10

    hb = msgs[f"hm.agent.heartbeat.{HB_AGENT}"]
    assert (hb["decoder"], hb["device"], hb["event"], hb["severity"]) == (
        "bosh-heartbeat", HB_AGENT, "heartbeat", "info")
    assert hb["fields"]["job"] == "nfs_server"
    assert hb["fields"]["cpu.sys"] == 0.4
    assert hb["fields"]["disk.persistent.percent"] == 75
    assert hb["fields"]["uptime.secs"] == 11391077

    alert = msgs["hm.agent.alert.a1"]
    assert (alert["decoder"], alert["device"], alert["severity"]) == ("bosh-alert", "a1",
                                                                      "crit")
    shut = msgs["hm.agent.shutdown.a2"]
    assert (shut["decoder"], shut["event"]) == ("bosh-shutdown", "shutdown")

    rpc = msgs[ssh_subject]
    assert (rpc["decoder"], rpc["device"], rpc["event"]) == ("bosh-rpc", AGENT, "get_state")
    assert rpc["fields"]["reply_to"].startswith("director.603ed0d3")
    ssh = msgs["agent.ssh-target"]
    assert ssh["event"] == "ssh"
    assert ssh["fields"]["arguments"][1]["public_key"] == "<redacted>"
    assert msgs["agent.logs-target"]["fields"]["arguments"][0]["signed_url"].endswith(
        "?<redacted>")
    reply = msgs[REPLY_SUBJECT]
    assert reply["decode_error"].startswith("bosh-rpc: ")
    ping = msgs["director.d.agent9.r1"]
    assert (ping["device"], ping["event"], ping["fields"]["value"]) == ("agent9", "reply",
                                                                        "pong")
    tel = msgs["pmacct.telemetry"]
    assert (tel["decoder"], tel["device"]) == ("pmacct", "192.0.2.51")

    captured = b.out.read_text()
    for secret in ("ssh-rsa", "Q39rHu4YXJRBogtE3o9LV1fh3d9HAWm26cC_YBUJPEk", "SECRETKEYDATA",
                   "hashedsecretpw", "davpassword", "blobsecret"):
        assert secret not in captured


def test_pretty_shows_device_event_severity_summary(mosquitto: Mosquitto) -> None:
    proc = subprocess.Popen([*BUSTAP, "capture", mosquitto.url, "-t", "#", "--pretty",
                             "-C", "4", "-W", "30"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # "# connected ..." once subscribed
    assert "connected" in first, proc.stderr.read() if proc.stderr else ""
    mosquitto_pub(mosquitto.port, "/junos/events/syslog/SNMP_TRAP_LINK_DOWN", junos_seeds()[6])
    mosquitto_pub(mosquitto.port, "logs/vmx4", SYSLOG_LINE)
    mosquitto_pub(mosquitto.port, "plain/topic", "42")
    mosquitto_pub(mosquitto.port, "/junos/events/syslog/X", '{"jet-event": {')
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    lines = [line for line in out.splitlines() if " # disconnected " not in line]
    assert len(lines) == 4, out
    ts, rest = lines[0].split(" ", 1)
    assert len(ts) == 12 and ts[2] == ":"  # HH:MM:SS.mmm
    assert rest == ("vmx4  SNMP_TRAP_LINK_DOWN  warning  SNMP_TRAP_LINK_DOWN on ge-0/0/1.0: "
                    "ifIndex 529, ifAdminStatus down(2), ifOperStatus down(2), "
                    "ifName ge-0/0/1.0")
    assert lines[1].split(" ", 1)[1].startswith("vmx4  mib2d  warning  mib2d: SNMP_TRAP")
    assert lines[2].endswith("plain/topic  42")
    assert lines[3].endswith('{"jet-event": {  [junos-jet: payload is not JSON]')
    for line in lines:
        orjson.dumps(line)  # one line each, no raw control characters
        assert "\x1b" not in line
