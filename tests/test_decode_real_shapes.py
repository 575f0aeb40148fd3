"""BOSH RPC and pmacct records in the shapes real traffic has, beyond what
the documents show. Each payload names the public file it was taken from."""

from __future__ import annotations

import json

from tests.fixtures.decode_samples import decode

AGENT = "fe0dd165-a3f2-4cf0-a925-ffbc9e27dfa8"


def nats(topic: str, payload: bytes) -> dict[str, object]:
    return decode(topic, payload, protocol="nats")


# --- BOSH ------------------------------------------------------------------------

def test_old_director_replies_on_three_part_subjects() -> None:
    # bosh director lib/bosh/director/nats_rpc.rb before the agent id was added:
    # reply_to = "#{@inbox_name}.#{request_id}", @inbox_name = "director.#{uuid}"
    rec = nats("director.7d9e2f0c.4b1a", b'{"value":"pong"}')
    assert rec["decoder"] == "bosh-rpc" and rec["event"] == "reply"
    assert rec["fields"]["request_id"] == "4b1a" and "device" not in rec
    req = nats(f"agent.{AGENT}", b'{"method":"ping","arguments":[],'
               b'"reply_to":"director.7d9e2f0c.4b1a"}')
    assert req["fields"]["request_id"] == "4b1a" and req["device"] == AGENT


def test_requests_without_protocol() -> None:
    # bosh-agent handler/perform_handler_with_json_test.go
    rec = nats(f"agent.{AGENT}", b'{"method":"ping","arguments":[],"reply_to":"fake-reply"}')
    assert rec["event"] == "ping" and "protocol" not in rec["fields"]
    assert "decode_error" not in rec


def test_values_of_every_kind() -> None:
    # bosh-agent agentclient/http/agent_client_test.go
    subject = f"director.d1.{AGENT}.r1"
    for body, value, summary in [
            (b'{"value":"stopped"}', "stopped", "reply: stopped"),
            (b'{"value":15}', 15, "reply: 15"),
            (b'{"value":["fake-disk-1", "fake-disk-2"]}', ["fake-disk-1", "fake-disk-2"],
             "reply: fake-disk-1, fake-disk-2"),
            (b'{"value":""}', "", "reply: (empty)")]:
        rec = nats(subject, body)
        assert "decode_error" not in rec, rec
        assert rec["fields"]["value"] == value and rec["fields"]["summary"] == summary
    task = nats(subject, b'{"value":{"agent_task_id":"fake-agent-task-id","state":"running"}}')
    assert task["fields"]["value.agent_task_id"] == "fake-agent-task-id"


def test_exceptions_at_the_top_and_inside_value() -> None:
    # bosh-agent agent/action_dispatcher_test.go
    top = nats(f"director.d1.{AGENT}.r1",
               b'{"exception":{"message":"Action Failed fake-action: fake-add-task-info-error"}}')
    assert top["event"] == "exception" and top["severity"] == "error"
    inner = nats(f"director.d1.{AGENT}.r2",
                 b'{"value":{"exception":{"message":"unknown message fake-action"}}}')
    assert inner["event"] == "exception"
    assert inner["fields"]["exception"] == "unknown message fake-action"


def test_recognised_by_shape_on_an_inbox() -> None:
    # bosh-agent integration/windows/windows_test.go: a request with a reply_to inbox
    req = nats("_INBOX.abc", b'{"method":"get_state","arguments":["full"],'
               b'"reply_to":"_INBOX.sender"}')
    assert req["decoder"] == "bosh-rpc" and req["event"] == "get_state"
    rep = nats("_INBOX.sender", b'{"exception":{"message":"bad request"}}')
    assert rep["decoder"] == "bosh-rpc" and rep["event"] == "exception"
    task = nats("_INBOX.t", b'{"value":{"agent_task_id":"fake-generated-task-id",'
                b'"state":"running"}}')
    assert task["decoder"] == "bosh-rpc"
    # a sensor's {"value": 21.5} is not an agent's reply
    assert nats("sensors.t1", b'{"value":21.5}')["decoder"] == "json"


# --- pmacct ----------------------------------------------------------------------

# pmacct tests/300-BGP-IPv6-CISCO-extNH_enc/output-bgp-00.json (as_path a list)
BGP_UPDATE = {
    "log_type": "update", "event_type": "log", "writer_id": "nfacctd_core", "tag": None,
    "label": {"nkey": "cafe.1", "pkey": "testing"}, "peer_ip_src": "cafe::1", "afi": 1,
    "safi": 128, "ip_prefix": "193.135.110.64/28", "rd": "1:10.215.182.150:0",
    "rd_origin": "bgp", "bgp_nexthop": "fd7c:3f00:301::1", "as_path": ["64969", "202088"],
    "as_path_id": None, "comms": [], "ecomms": ["RT:64969:4008"], "lcomms": [], "origin": "u",
    "local_pref": None, "med": None, "mpls_label": "917600"}
# pmacct tests/204-BMP-CISCO-peer_down/output-bmp-00.json (epoch-string timestamps)
BMP_INIT = {"seq": 0, "timestamp": "1777297124.335231", "event_type": "log_init",
            "writer_id": "nfacctd_core", "bmp_router": "fd25::101", "bmp_router_port": 34727}
BMP_PEER_UP = {
    "seq": 2, "timestamp": "1705334000.445228", "timestamp_event": None, "event_type": "log",
    "bmp_router": "fd25::101", "bmp_router_port": 34727, "bmp_msg_type": "peer_up",
    "writer_id": "nfacctd_core", "peer_ip": "2001:db8:44::1", "peer_asn": 64496,
    "local_as": 4226809946, "bgp_id": "203.0.113.44", "peer_type": 0,
    "peer_type_str": "Global Instance Peer"}


def pm(record: dict[str, object], topic: str = "pmacct/bgp") -> dict[str, object]:
    return decode(topic, json.dumps(record).encode())


def test_as_path_list_or_string() -> None:
    rec = pm(BGP_UPDATE)
    assert rec["decoder"] == "pmacct" and rec["fields"]["as_path"] == "64969 202088"
    assert "as_path 64969 202088" in rec["fields"]["summary"]
    text = pm({**BGP_UPDATE, "as_path": "64969 202088"})
    assert text["fields"]["as_path"] == "64969 202088"


def test_timestamps_in_every_format_pmacct_writes() -> None:
    # CONFIG-KEYS timestamps_since_epoch / timestamps_rfc9557 / timestamps_utc, and
    # the default "%Y-%m-%d %H:%M:%S.%f"; "0.000000" is pmacct's "not known"
    expected = "2024-01-15T15:53:20.445228Z"
    for ts in ("1705334000.445228", 1705334000.445228, "2024-01-15 15:53:20.445228",
               "2024-01-15T15:53:20.445228Z", "2024-01-15T15:53:20.445228+00:00",
               "2024-01-15T16:53:20.445228+01:00"):
        rec = pm({**BMP_PEER_UP, "timestamp": ts}, "pmacct/bmp")
        assert rec["fields"]["time"] == expected, ts
    assert pm({**BMP_PEER_UP, "timestamp": "2024-01-15 15:53:20"})["fields"]["time"] == \
        "2024-01-15T15:53:20Z"
    assert pm({**BMP_PEER_UP, "timestamp": 1705334000})["fields"]["time"] == \
        "2024-01-15T15:53:20Z"
    zero = pm({**BMP_PEER_UP, "timestamp": "0.000000"})
    assert "time" not in zero["fields"] and "decode_error" not in zero
    assert pm(BMP_INIT)["event"] == "log_init"


def test_event_types_beyond_the_document() -> None:
    # pmacct src/plugin_cmn_json.c: flow records (purge, between purge_init and
    # purge_close), the BGP looking glass (lglass); tests/*/output-flow-00.json
    for event in ("purge_init", "purge", "purge_close", "lglass"):
        rec = pm({**BMP_PEER_UP, "event_type": event})
        assert rec["decoder"] == "pmacct" and rec["event"] == event and "decode_error" \
            not in rec


def test_json_string_telemetry() -> None:
    # pmacct commit a57675e2 (tmp_telemetry_decode_cisco_v1_json_string):
    # telemetry_data left as the router's JSON text, serialization "json_string"
    inner = {"node_id_str": "xr-1", "encoding_path": "Cisco-IOS-XR-infra-statsd-oper:x",
             "data_json": [{"keys": {"interface-name": "Gi0/0/0/0"}}]}
    rec = pm({"event_type": "log", "seq": 7, "timestamp": "2022-06-30 12:40:41.000000",
              "telemetry_node": "192.0.2.7", "telemetry_port": 57500,
              "serialization": "json_string", "telemetry_data": json.dumps(inner)},
             "pmacct/telemetry")
    assert "decode_error" not in rec
    assert rec["payload"]["telemetry_data"] == inner
    bad = pm({"event_type": "log", "telemetry_node": "192.0.2.7",
              "serialization": "json_string", "telemetry_data": "{not json"})
    assert bad["decoder"] == "pmacct" and bad["fields"]["telemetry_data"] == "{not json"


def test_ietf_telemetry_message_shape() -> None:
    # pmacct src/telemetry/telemetry_logdump.c (draft-ietf-nmop-message-broker-
    # telemetry-message): labels, manifest and metadata around the payload
    msg = {"data-collection-manifest": {"vendor": "pmacct", "name": "default",
                                        "software-version": "1.7.10"},
           "payload": {"ietf-interfaces:interfaces": {"interface": [{"name": "eth0"}]}},
           "network-operator-metadata": {"labels": [
               {"name": "seq", "number-value": 12},
               {"name": "serialization", "string-value": "json"}]},
           "telemetry-message-metadata": {"notification-event": "log",
                                          "session-protocol": "telemetry",
                                          "collection-timestamp": "1705334000.445228",
                                          "export-address": "192.0.2.9",
                                          "export-port": 57500}}
    for body in (msg, {"ietf-telemetry-message:message": msg}):
        rec = pm(body, "pmacct/telemetry")
        assert rec["decoder"] == "pmacct" and "decode_error" not in rec, rec
        assert rec["device"] == "192.0.2.9" and rec["event"] == "log"
        f = rec["fields"]
        assert f["family"] == "telemetry" and f["serialization"] == "json" and f["seq"] == 12
        assert f["time"] == "2024-01-15T15:53:20.445228Z"
