from __future__ import annotations

import orjson
import pytest
from tests.fixtures.decode_samples import decode, seed


def pm(name: str, topic: str = "pmacct/msglog") -> dict:
    return decode(topic, seed(f"pmacct/{name}.json"))


@pytest.mark.parametrize(("name", "device", "event", "family"), [
    ("bgp_log_init", "192.0.2.1", "log_init", "bgp"),
    ("bgp_log_update", "192.0.2.1", "log", "bgp"),
    ("bgp_dump_init", "192.0.2.1", "dump_init", "bgp"),
    ("bgp_dump_close", "192.0.2.1", "dump_close", "bgp"),
    ("bmp_route_monitor", "203.0.113.9", "log", "bmp"),
    ("bmp_peer_up", "203.0.113.9", "dump", "bmp"),
    ("telemetry_json", "192.0.2.50", "log", "telemetry"),
    ("telemetry_json_string", "192.0.2.50", "dump", "telemetry"),
    ("telemetry_gpb", "192.0.2.51", "log", "telemetry"),
])
def test_templates_from_seed(name: str, device: str, event: str, family: str) -> None:
    rec = pm(name)
    assert "decode_error" not in rec
    assert (rec["decoder"], rec["device"], rec["event"]) == ("pmacct", device, event)
    assert rec["fields"]["family"] == family
    assert rec["fields"]["summary"]


def test_bgp_update_fields() -> None:
    f = pm("bgp_log_update")["fields"]
    assert f["afi"] == 1 and f["safi"] == 1
    assert f["log_type"] == "update"
    assert f["ip_prefix"] == "198.51.100.0/24"
    assert f["as_path"] == "65001 65002"
    assert f["seq"] == 1
    assert f["writer_id"] == "nfacctd_bgp/4172"
    assert f["summary"] == ("BGP log update 198.51.100.0/24 via 192.0.2.1 "
                            "as_path 65001 65002")


def test_dump_close_counts() -> None:
    f = pm("bgp_dump_close")["fields"]
    assert (f["tables"], f["entries"]) == (1, 812)
    assert "812 entries" in f["summary"]


def test_bmp() -> None:
    f = pm("bmp_route_monitor")["fields"]
    assert (f["bmp_msg_type"], f["log_type"], f["peer_ip"]) == ("route_monitor", "withdraw",
                                                                "203.0.113.10")
    assert pm("bmp_peer_up")["fields"]["peer_asn"] == 65010


def test_telemetry_json_object_and_string() -> None:
    rec = pm("telemetry_json")
    assert rec["fields"]["telemetry_data"]["node_id_str"] == "rtr1"
    rec = pm("telemetry_json_string")
    assert rec["fields"]["telemetry_data"] == {"node_id_str": "rtr1", "collection_id": 42}
    assert rec["payload"]["telemetry_data"] == {"node_id_str": "rtr1", "collection_id": 42}


def test_telemetry_gpb_stays_base64() -> None:
    rec = pm("telemetry_gpb")
    assert rec["fields"]["telemetry_data"] == "CgRydHIxEgZpZmFjZXM="
    assert rec["fields"]["telemetry_bytes"] == 14
    assert rec["fields"]["serialization"] == "gpb"


def test_sniffed_on_nats_too() -> None:
    rec = decode("pmacct.bgp", seed("pmacct/bgp_log_update.json"), protocol="nats")
    assert rec["decoder"] == "pmacct"


@pytest.mark.parametrize("body", [
    {"event_type": "log", "seq": 1},                 # no device key
    {"event_type": "flow", "peer_ip_src": "1.2.3.4"},  # not a msglog event
    {"event_type": "log", "kind": "message", "topic": "x"},  # a bustap record
])
def test_not_sniffed(body: dict) -> None:
    assert decode("t", orjson.dumps(body))["decoder"] == "json"


@pytest.mark.parametrize(("body", "reason"), [
    ({"event_type": "log", "peer_ip_src": 5}, "peer_ip_src"),
    ({"event_type": "log", "telemetry_node": "n", "serialization": "json",
      "telemetry_data": "{broken"}, "not JSON"),
    ({"event_type": "log", "telemetry_node": "n", "serialization": "gpb",
      "telemetry_data": "!!!"}, "base64"),
    ({"event_type": "log", "telemetry_node": "n", "serialization": "gpb",
      "telemetry_data": 5}, "base64"),
])
def test_wrong_shape(body: dict, reason: str) -> None:
    rec = decode("pmacct/x", orjson.dumps(body))
    assert rec["decode_error"].startswith("pmacct: ")
    assert reason in rec["decode_error"]
    assert rec["decoder"] == "json"
    assert rec["payload"] == body


def test_forced_by_rule_on_bad_input() -> None:
    from bustap.decode import DecoderChain

    chain = DecoderChain(rules=[{"filter": "pm/#", "decoder": "pmacct"}])
    rec = decode("pm/1", b'{"event_type": "log", "peer_ip_src": "1.2.3', chain=chain)
    assert rec["decode_error"] == "pmacct: payload is not JSON"
    assert rec["format"] == "text"
    rec = decode("pm/1", b'{"event_type": "nope", "peer_ip_src": "1"}', chain=chain)
    assert "event_type" in rec["decode_error"]
