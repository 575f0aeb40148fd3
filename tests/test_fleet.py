from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bustap.config import command_line_sources, parse, sources_from_tables
from bustap.errors import ConfigError
from bustap.fleet import MAX_EXPANSION, expand, parse_lines
from bustap.health import Health
from bustap.sources import SourceOptions


def test_ranges_keep_the_width_of_their_first_number() -> None:
    assert expand("mqtt://rtr-{001..003}:1883") == [
        "mqtt://rtr-001:1883", "mqtt://rtr-002:1883", "mqtt://rtr-003:1883"]
    assert expand("mqtt://r{8..10}") == ["mqtt://r8", "mqtt://r9", "mqtt://r10"]
    assert expand("mqtt://r{3..1}") == ["mqtt://r3", "mqtt://r2", "mqtt://r1"]
    assert expand("mqtt://r{0..10..5}") == ["mqtt://r0", "mqtt://r5", "mqtt://r10"]


def test_lists_and_several_braces_multiply() -> None:
    assert expand("mqtt://{pe,ce}{1..2}.lab") == [
        "mqtt://pe1.lab", "mqtt://pe2.lab", "mqtt://ce1.lab", "mqtt://ce2.lab"]
    assert expand("nats://bus:4222") == ["nats://bus:4222"]


@given(st.integers(0, 500), st.integers(0, 500))
def test_a_range_has_every_number_once(a: int, b: int) -> None:
    got = expand(f"mqtt://h{{{a}..{b}}}")
    assert len(got) == abs(b - a) + 1 == len(set(got))


def test_bad_or_huge_ranges_are_refused_without_the_password() -> None:
    with pytest.raises(ConfigError, match="neither a range"):
        expand("mqtt://u:hunter2@r{1-3}")
    with pytest.raises(ConfigError) as err:
        expand(f"mqtt://u:hunter2@r{{1..{MAX_EXPANSION + 1}}}")
    assert "hunter2" not in str(err.value) and "at most" in str(err.value)


def test_sources_lines_with_options_and_comments() -> None:
    tables = parse_lines("# routers\n\nmqtt://rtr-{1..2}:1883   # shared defaults\n"
                         "mqtts://edge:8883 username=tap password_env=PW qos=1 insecure=true\n",
                         "fleet.txt")
    assert [t["url"] for t in tables] == ["mqtt://rtr-{1..2}:1883", "mqtts://edge:8883"]
    assert tables[1]["username"] == "tap" and tables[1]["_line"] == 4
    with pytest.raises(ConfigError, match=r"fleet\.txt:1: word 2") as err:
        parse_lines("mqtt://a qos=1 password:hunter2", "fleet.txt")
    assert "hunter2" not in str(err.value)


def test_tables_become_sources_with_defaults_flags_and_secrets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_PW", "s3cret")
    base = SourceOptions(username="shared", keepalive_secs=30)
    tables = parse_lines("mqtt://rtr-{1..3}:1883\n"
                         "mqtt://edge:1883 username=tap password_env=EDGE_PW qos=1 "
                         "topics=a/#,b/#\n", "f.txt")
    sources = sources_from_tables(tables, origin="f.txt", base=base,
                                  defaults={"connect_timeout_secs": 2})
    assert [s.name for s in sources] == ["mqtt://rtr-1:1883", "mqtt://rtr-2:1883",
                                         "mqtt://rtr-3:1883", "mqtt://edge:1883"]
    rtr, edge = sources[0].options, sources[-1].options
    assert rtr.username == "shared" and rtr.keepalive_secs == 30
    assert rtr.connect_timeout_secs == 2
    assert edge.username == "tap" and edge.password == "s3cret" and edge.qos == 1
    assert edge.filters == ["a/#", "b/#"]
    assert base.username == "shared" and base.password is None  # the flags' own untouched
    with pytest.raises(ConfigError) as err:
        sources_from_tables(parse_lines("mqtt://x qos=high password=pw1", "f.txt"),
                            origin="f.txt")
    assert "f.txt:1.qos" in str(err.value)
    with pytest.raises(ConfigError) as err:
        sources_from_tables([{"url": "mqtt://x", "password": 5}], origin="f.toml")
    assert "***" in str(err.value)
    with pytest.raises(ConfigError, match="colour"):
        sources_from_tables(parse_lines("mqtt://x colour=red", "f.txt"), origin="f.txt")


def test_ranges_and_files_make_a_fleet(tmp_path: object) -> None:
    one = command_line_sources(["mqtt://a:1883"], SourceOptions())
    assert not one[0].options.keep_trying and one[0].options.connect_gate is None
    many = command_line_sources(["mqtt://r{1..3}:1883", "nats://bus"], SourceOptions(),
                                max_connecting=2)
    gates = {id(s.options.connect_gate) for s in many}
    assert len(many) == 4 and len(gates) == 1 and all(s.options.keep_trying for s in many)
    with pytest.raises(ConfigError, match="no source"):
        command_line_sources([], SourceOptions())


def test_config_source_lists_and_defaults() -> None:
    cfg = parse('''
max_connecting = 4
[source_defaults]
username = "tap"
keepalive_secs = 20
[[source]]
url = "mqtt://rtr-{001..100}:1883"
[[source]]
urls = ["nats://bus-1:4222", "nats://bus-2:4222"]
username = "hm"
[[sink]]
url = "-"
''')
    assert len(cfg.sources) == 102 and cfg.max_connecting == 4
    assert cfg.sources[0].name == "mqtt://rtr-001:1883"
    assert cfg.sources[0].options.username == "tap"
    assert cfg.sources[-1].options.username == "hm"
    assert cfg.sources[-1].options.keepalive_secs == 20
    assert all(s.options.keep_trying for s in cfg.sources)
    with pytest.raises(ConfigError, match="max_connecting"):
        parse('max_connecting = 0\n[[source]]\nurl = "mqtt://a"\n')
    with pytest.raises(ConfigError, match="source_defaults"):
        parse('[source_defaults]\ncolour = 1\n[[source]]\nurl = "mqtt://a"\n')


def test_health_counts_reconnects_and_keeps_the_last_error() -> None:
    h = Health()
    assert h.down("b", "Connection refused").fields() == {
        "connected": False, "reconnects": 0, "last_error": "Connection refused"}
    h.up("b")
    h.seen("b", 1_700_000_000.0)
    h.down("b", "connection closed")
    state = h.up("b").fields()
    assert state["connected"] is True and state["reconnects"] == 1
    assert state["last_message"] == "2023-11-14T22:13:20.000000Z"
    assert state["last_error"] == "connection closed"
    assert h.down("b", "stopped").fields()["last_error"] == "connection closed"
    assert h.summary() == {"brokers": 1, "connected": 0, "down": 1}
