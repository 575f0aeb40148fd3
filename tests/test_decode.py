"""The decoder chain: selection, rules and expressions, content type, and
property tests that no payload can break it."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fixtures.decode_samples import decode, junos_seeds, seed

from bustap.decode import DECODERS, MAX_PARSE_BYTES, DecoderChain, DecodeRule, load_all
from bustap.decode._expr import compile_expr
from bustap.errors import ConfigError
from bustap.message import Message


def test_registry_has_every_decoder() -> None:
    names = set(load_all())
    assert {"junos-jet", "bosh-heartbeat", "bosh-alert", "bosh-shutdown", "bosh-rpc",
            "pmacct", "syslog"} <= names
    for name, cls in DECODERS.items():
        assert cls.name == name


@pytest.mark.parametrize(("payload", "fmt", "decoder", "value"), [
    (b'{"a": 1}', "json", "json", {"a": 1}),
    (b"21.5", "json", "number", 21.5),
    (b"-3", "json", "number", -3),
    (b"true", "json", "json", True),
    (b"on", "text", "text", "on"),
    (b"", "text", "text", ""),
    (b"\xff\x00", "binary", "binary", "/wA="),
])
def test_generic(payload: bytes, fmt: str, decoder: str, value: Any) -> None:
    rec = decode("sensors/x", payload)
    assert (rec["format"], rec["decoder"], rec["payload"]) == (fmt, decoder, value)
    assert "decode_error" not in rec


def test_decoders_option_restricts() -> None:
    chain = DecoderChain(["pmacct"])
    rec = decode("/junos/events/syslog/X", junos_seeds()[0], chain=chain)
    assert rec["decoder"] == "json"
    with pytest.raises(ConfigError, match="unknown decoder 'nope'"):
        DecoderChain(["nope"])


def test_claim_is_cached_per_topic() -> None:
    chain = DecoderChain()
    assert chain.for_topic("mqtt", "/junos/events/syslog/X") is chain.for_topic(
        "mqtt", "/junos/events/syslog/X")
    assert chain.for_topic("mqtt", "/junos/events/syslog/X").name == "junos-jet"
    assert chain.for_topic("nats", "sensors.x") is None


# --- content type ---------------------------------------------------------

def mqtt5(payload: bytes, **props: Any) -> dict[str, Any]:
    return decode("dev/1", payload, properties=props)


def test_content_type_json() -> None:
    rec = mqtt5(b'{"a":1}', content_type="application/json; charset=utf-8")
    assert (rec["format"], rec["decoder"]) == ("json", "json")
    rec = mqtt5(b"{nope", content_type="application/json")
    assert rec["decode_error"] == ("json: payload is not valid JSON "
                                   "(content_type application/json)")
    assert rec["format"] == "text"
    assert mqtt5(b'{"a":1}', content_type="application/vnd.x+json")["format"] == "json"


def test_content_type_text_keeps_json_looking_text() -> None:
    rec = mqtt5(b'{"a": 1}', content_type="text/plain")
    assert (rec["format"], rec["decoder"], rec["payload"]) == ("text", "text", '{"a": 1}')
    rec = mqtt5(b"\xff", content_type="text/plain")
    assert rec["format"] == "binary"
    assert rec["decode_error"].startswith("text: invalid UTF-8 at byte 0")


def test_content_type_text_still_sniffs_syslog() -> None:
    rec = mqtt5(b"<34>Oct 11 22:14:15 gw su: x", content_type="text/plain")
    assert rec["decoder"] == "syslog"


def test_octet_stream_is_binary_even_when_text() -> None:
    rec = mqtt5(b"hello", content_type="application/octet-stream")
    assert (rec["format"], rec["decoder"], rec["payload"]) == ("binary", "binary", "aGVsbG8=")
    rec = decode("/junos/events/syslog/X", junos_seeds()[0],
                 properties={"content_type": "application/octet-stream"})
    assert rec["decoder"] == "binary"


def test_unknown_content_type_falls_back_to_detection() -> None:
    assert mqtt5(b'{"a":1}', content_type="application/xml")["format"] == "json"


def test_payload_format_indicator() -> None:
    assert mqtt5(b"caf\xc3\xa9", payload_format_indicator=1)["payload"] == "café"
    rec = mqtt5(b"\xc3\x28", payload_format_indicator=1)
    assert rec["format"] == "binary"
    assert rec["decode_error"].startswith("text: payload_format_indicator 1")
    assert "decode_error" not in mqtt5(b"\xc3\x28", payload_format_indicator=0)


def test_nats_content_type_header() -> None:
    rec = decode("a.b", b"123", protocol="nats", headers={"Content-Type": ["text/plain"]})
    assert (rec["format"], rec["payload"]) == ("text", "123")


def test_oversize_without_decoder() -> None:
    rec = decode("big", b"x" * (MAX_PARSE_BYTES + 1))
    assert rec["format"] == "text"
    assert rec["decode_error"].startswith("payload of")


# --- rules ----------------------------------------------------------------

def test_rule_sample_from_docs() -> None:
    chain = DecoderChain(rules=[{"filter": "sensors/+/temperature", "decoder": "number",
                                 "device": "topic[1]"}])
    rec = decode("sensors/greenhouse-3/temperature", b"21.5", chain=chain)
    assert (rec["decoder"], rec["device"], rec["payload"]) == ("number", "greenhouse-3", 21.5)
    rec = decode("sensors/greenhouse-3/temperature", b"warm", chain=chain)
    assert rec["decode_error"] == "number: payload is not a number"
    assert rec["device"] == "greenhouse-3"
    assert rec["payload"] == "warm"


def test_rule_device_event_from_payload_with_fallback() -> None:
    chain = DecoderChain(rules=[DecodeRule(
        "plant/#", device="payload.meta.id | topic[-1]", event="payload.kind | 'reading'",
        severity="payload.level")])
    rec = decode("plant/line1/m7", b'{"meta": {"id": "press-7"}, "kind": "jam", '
                 b'"level": "WARN"}', chain=chain)
    assert (rec["device"], rec["event"], rec["severity"]) == ("press-7", "jam", "warning")
    rec = decode("plant/line1/m7", b'{"meta": {}}', chain=chain)
    assert (rec["device"], rec["event"]) == ("m7", "reading")
    assert "severity" not in rec


def test_rule_overrides_decoder_naming_and_first_rule_wins() -> None:
    chain = DecoderChain(rules=[
        {"filter": "hm.agent.heartbeat.*", "device": "fields.job", "protocol": "nats"},
        {"filter": "hm.agent.>", "device": "'never'"},
    ])
    rec = decode("hm.agent.heartbeat.a1", seed("bosh/heartbeat.json"), protocol="nats",
                 chain=chain)
    assert (rec["decoder"], rec["device"]) == ("bosh-heartbeat", "nfs_server")
    rec = decode("hm.agent.alert.a1", b'{"severity": 4}', protocol="nats", chain=chain)
    assert rec["device"] == "never"


def test_rule_protocol_restricts() -> None:
    chain = DecoderChain(rules=[{"filter": "x", "decoder": "text", "protocol": "nats"}])
    assert decode("x", b"1", chain=chain)["decoder"] == "number"
    assert decode("x", b"1", protocol="nats", chain=chain)["decoder"] == "text"


def test_rule_can_use_a_decoder_left_out_of_names() -> None:
    chain = DecoderChain(["pmacct"], rules=[("logs/#", "syslog")])
    assert decode("logs/1", b"<13>Oct 11 22:14:15 gw a: b", chain=chain)["decoder"] == "syslog"


def test_rule_headers_and_properties() -> None:
    chain = DecoderChain(rules=[{"filter": "#", "device": "headers.site | properties.x"}])
    rec = decode("a", b"1", headers={"site": "lyon"}, chain=chain)
    assert rec["device"] == "lyon"


@pytest.mark.parametrize(("rule", "message"), [
    ({"filter": "a/#", "decoder": "nope"}, "decode rule 1: unknown decoder 'nope'"),
    ({"filter": "a/#", "colour": "red"}, "decode rule 1: unknown key 'colour'"),
    ({"decoder": "json"}, "decode rule 1: missing filter"),
    ({"filter": "a/#/b"}, "decode rule 1: invalid filter 'a/#/b'"),
    ({"filter": "a/#", "protocol": "amqp"}, "protocol 'amqp'"),
    ({"filter": "a/#", "device": 3}, "device must be a string"),
    ({"filter": "a/#", "device": "topic[x]"}, "invalid device expression 'topic[x]'"),
    ({"filter": "a/#", "device": "os.system('x')"}, "unknown name 'os'"),
    ({"filter": "a/#", "device": "payload.a b"}, "expected '|' or the end"),
    ({"filter": "a/#", "event": "payload['k"}, "unterminated string"),
    ({"filter": "a/#", "severity": "'loud'"}, "severity 'loud' is not one of"),
    ("a/#", "expected a table"),
])
def test_bad_rules_are_config_errors(rule: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        DecoderChain(rules=[rule])


@pytest.mark.parametrize(("expr", "topic", "payload", "want"), [
    ("topic", "a/b/c", b"{}", "a/b/c"),
    ("topic[0]", "a/b/c", b"{}", "a"),
    ("topic[-1]", "a/b/c", b"{}", "c"),
    ("topic[7]", "a/b/c", b"{}", None),
    ("topic[1]", "/junos/events", b"{}", "junos"),
    ("payload.a[1].b", "t", b'{"a": [{}, {"b": 7}]}', "7"),
    ("payload['key.with dots']", "t", b'{"key.with dots": "v"}', "v"),
    ("payload.process-name", "t", b'{"process-name": "mgd"}', "mgd"),
    ("payload.a", "t", b'{"a": {"b": 1}}', None),
    ("payload.a", "t", b'{"a": true}', "true"),
    ("payload", "t", b"plain text", "plain text"),
    ("payload.a", "t", b"[1]", None),
    ("payload[0]", "t", b"[1]", "1"),
    ("'lit' | topic", "t", b"", "lit"),
    ("protocol", "t", b"", "mqtt"),
])
def test_expressions(expr: str, topic: str, payload: bytes, want: str | None) -> None:
    chain = DecoderChain([])
    msg = Message("mqtt", topic, payload, 0.0)
    rec: dict[str, Any] = {}
    chain.decode(msg, rec)
    assert compile_expr(expr).evaluate(msg, rec) == want


def test_nats_topic_levels_split_on_dots() -> None:
    chain = DecoderChain(rules=[{"filter": "sensors.*.temp", "device": "topic[1]"}])
    assert decode("sensors.s9.temp", b"1", protocol="nats", chain=chain)["device"] == "s9"


@given(st.text(max_size=60))
def test_expression_parser_only_raises_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        compile_expr(text)


# --- nothing escapes, nothing is lost ---------------------------------------

CHAIN = DecoderChain(rules=[{"filter": f"force/{name}", "decoder": name}
                            for name in [*load_all(), "json", "number", "text", "binary"]]
                     + [{"filter": "named/#", "device": "payload.a.b | topic[1]",
                         "event": "payload[0]", "severity": "payload.s"}])
TOPICS = [("mqtt", f"force/{name}") for name in [*load_all(), "json", "number", "text",
                                                 "binary"]] + [
    ("mqtt", "/junos/events/syslog/X"), ("mqtt", "/junos/events/kernel/interfaces/ifa/add/a"),
    ("nats", "hm.agent.heartbeat.a"), ("nats", "hm.agent.alert.a"),
    ("nats", "hm.agent.shutdown.a"), ("nats", "hm.director.alert"), ("nats", "agent.a"),
    ("nats", "director.a.b.c"), ("mqtt", "named/x"), ("mqtt", "any/topic")]

KEYS = ["jet-event", "event-id", "hostname", "severity", "attributes", "message", "time",
        "vitals", "load", "cpu", "method", "arguments", "reply_to", "value", "exception",
        "event_type", "peer_ip_src", "bmp_router", "telemetry_node", "telemetry_data",
        "serialization", "password", "signed_url", "job", "index", "a", "b", "s"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                    st.sampled_from(["log", "json", "gpb", "warn", "running", "ssh",
                                     "https://u:p@h/x?sig=1", "e30="]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner,
                    max_size=5)), max_leaves=20)


def check(protocol: str, topic: str, payload: bytes, **kw: Any) -> None:
    rec: dict[str, Any] = {}
    CHAIN.decode(Message(protocol, topic, payload, 0.0, **kw), rec)
    assert rec["format"] in ("json", "text", "binary")
    assert "payload" in rec
    assert isinstance(rec["decoder"], str)
    assert rec.get("severity") in (None, "emerg", "alert", "crit", "error", "warning",
                                   "notice", "info", "debug")
    if "decode_error" in rec:
        assert isinstance(rec["decode_error"], str) and ": " in rec["decode_error"]
    orjson.dumps(rec)  # always serialisable


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TOPICS), st.binary(max_size=300))
def test_random_bytes_never_escape(where: tuple[str, str], payload: bytes) -> None:
    check(*where, payload)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(TOPICS), JSON, st.booleans())
def test_random_json_never_escapes(where: tuple[str, str], value: Any, wrap: bool) -> None:
    if wrap:  # reach deep into the decoders that want an envelope
        value = {"jet-event": value} if where[1].startswith("/junos") else {
            "event_type": "log", "peer_ip_src": "1.2.3.4", "vitals": value, "method": "m",
            "arguments": [value], "value": value}
    payload = json.dumps(value).encode()
    check(*where, payload)
    check(*where, payload[: len(payload) // 2])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=100), st.sampled_from(["application/json", "text/plain",
                                                  "application/octet-stream", "x/y", ""]),
       st.sampled_from([None, 0, 1, 7]))
def test_random_properties_never_escape(payload: bytes, ct: str, pfi: int | None) -> None:
    check("mqtt", "any/topic", payload, properties={"content_type": ct,
                                                   "payload_format_indicator": pfi})


def test_a_decoder_bug_is_contained() -> None:
    class Broken(DECODERS["syslog"]):  # type: ignore[misc, valid-type]
        def decode(self, msg: Message, value: Any, rec: dict[str, Any]) -> None:
            rec["device"] = "half"
            raise KeyError("boom")

    chain = DecoderChain([])
    chain.decoders = [Broken()]
    chain._sniff_text = chain.decoders
    chain.sniffers = chain.decoders
    rec = decode("t", b"<13>x", chain=chain)
    assert rec["decode_error"] == "syslog: KeyError: 'boom'"
    assert "device" not in rec
    assert rec["payload"] == "<13>x"


def test_docs_sample_rules_are_accepted() -> None:
    import tomllib
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = doc.split("## Decoders", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    rules = tomllib.loads(block)["decode"]["rules"]
    chain = DecoderChain(rules=rules)
    assert len(chain.rules) == 3
    rec = decode("sensors/greenhouse-3/temperature", b"21.5", chain=chain)
    assert (rec["decoder"], rec["device"]) == ("number", "greenhouse-3")
