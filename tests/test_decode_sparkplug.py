"""Sparkplug B payloads encoded with protobuf from the published schema, in
the shapes of the Sparkplug 3.0 specification's examples (NBIRTH with bdSeq
and Node Control/Rebirth, DBIRTH, DDATA by alias, NDEATH, STATE)."""

from __future__ import annotations

from typing import Any

from tests.fixtures.decode_samples import decode

from bustap.decode import DecoderChain
from bustap.decode._sparkplug_schema import payload_class

TS = 1_700_000_000_123


def payload(metrics: list[dict[str, Any]], seq: int | None = 0, **kw: Any) -> bytes:
    p = payload_class()(timestamp=TS, **kw)
    if seq is not None:
        p.seq = seq
    for m in metrics:
        p.metrics.add(**m)
    return bytes(p.SerializeToString())


NBIRTH = payload([
    {"name": "bdSeq", "alias": 0, "timestamp": TS, "datatype": 8, "long_value": 3},
    {"name": "Node Control/Rebirth", "alias": 1, "datatype": 11, "boolean_value": False},
    {"name": "Properties/Hardware Make", "alias": 2, "datatype": 12, "string_value": "acme"}])
DBIRTH = payload([
    {"name": "Inputs/Temperature", "alias": 10, "datatype": 9, "float_value": 21.5},
    {"name": "Inputs/Offset", "alias": 11, "datatype": 3, "int_value": (-5) & 0xFFFFFFFF},
    {"name": "Outputs/Valve", "alias": 12, "datatype": 11, "boolean_value": True}], seq=1)
DDATA = payload([{"alias": 10, "timestamp": TS, "datatype": 9, "float_value": 23.25},
                 {"alias": 99, "datatype": 10, "double_value": 1.5}], seq=2)


def test_births_data_by_alias_and_death() -> None:
    chain = DecoderChain()
    birth = decode("spBv1.0/Plant1/NBIRTH/Line1", NBIRTH, chain=chain)
    assert birth["decoder"] == "sparkplug-b" and "decode_error" not in birth, birth
    assert birth["device"] == "Line1" and birth["event"] == "nbirth"
    assert birth["severity"] == "notice" and birth["format"] == "binary"
    f = birth["fields"]
    assert f["group"] == "Plant1" and f["seq"] == 0 and f["metrics.bdSeq"] == 3
    assert f["metrics.Node Control/Rebirth"] is False and f["types.bdSeq"] == "UInt64"
    assert f["time"] == "2023-11-14T22:13:20.123000Z"
    dbirth = decode("spBv1.0/Plant1/DBIRTH/Line1/Robot1", DBIRTH, chain=chain)
    assert dbirth["device"] == "Line1/Robot1"
    assert dbirth["fields"]["metrics.Inputs/Offset"] == -5  # Int32 as its bit pattern
    data = decode("spBv1.0/Plant1/DDATA/Line1/Robot1", DDATA, chain=chain)
    assert data["event"] == "ddata" and data["severity"] == "info"
    assert data["fields"]["metrics.Inputs/Temperature"] == 23.25
    assert data["fields"]["metrics.alias.99"] == 1.5  # no birth named it
    assert data["fields"]["summary"].startswith("DDATA Plant1/Line1/Robot1: Inputs/Temperature")
    death = decode("spBv1.0/Plant1/NDEATH/Line1",
                   payload([{"name": "bdSeq", "datatype": 8, "long_value": 3}], seq=None),
                   chain=chain)
    assert death["severity"] == "warning" and death["fields"]["metrics.bdSeq"] == 3


def test_state_of_the_host_application() -> None:
    now = decode("spBv1.0/STATE/scada-1", b'{"online": false, "timestamp": 1700000000000}')
    assert now["event"] == "state" and now["fields"]["online"] is False
    assert now["severity"] == "warning"
    old = decode("spBv1.0/STATE/scada-1", b"ONLINE")
    assert old["fields"]["online"] is True


def test_bad_payloads_are_kept_with_the_reason() -> None:
    rec = decode("spBv1.0/Plant1/NDATA/Line1", b"\xff\xff\xff\xff")
    assert rec["decode_error"].startswith("sparkplug-b: payload is not a Sparkplug B protobuf")
    assert rec["format"] == "binary"
    assert decode("spBv1.0/Plant1/NOPE/Line1", b"x")["decoder"] == "text"
    assert decode("spBv1.0/Plant1/DDATA/Line1/", b"x")["decoder"] == "text"
