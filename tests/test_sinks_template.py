"""Subject / topic / routing-key templates: whatever the record holds, the
name rendered is valid for its target."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bustap.errors import ConfigError
from bustap.sinks._template import Template
from bustap.topics import is_nats_subject_valid, validate_mqtt_topic

values = st.one_of(st.none(), st.text(max_size=40), st.integers(), st.booleans(),
                   st.lists(st.integers(), max_size=2))


@given(kind=values, device=values)
def test_nats_subject_is_always_valid_and_matches_the_stream_pattern(
        kind: object, device: object) -> None:
    t = Template("bustap.{kind}.{device}", "nats")
    subject = t.render({"kind": kind, "device": device})
    assert is_nats_subject_valid(subject, wildcards=False)
    assert len(subject.split(".")) == 3  # one token per field
    assert t.pattern() == "bustap.*.*"


@given(topic=values, device=values)
def test_mqtt_topic_is_always_valid(topic: object, device: object) -> None:
    name = Template("mirror/{topic}/{device}", "mqtt").render({"topic": topic,
                                                               "device": device})
    validate_mqtt_topic(name)
    assert "" not in name.split("/") and not name.split("/")[1].startswith("$")


@given(event=st.text(max_size=400))
def test_amqp_key_is_one_token_per_field_and_short(event: str) -> None:
    key = Template("bustap.{event}", "amqp").render({"event": event})
    assert len(key.encode()) <= 255
    assert not any(c in key for c in "*# \t\n")


def test_fields_by_dotted_name_and_placeholders() -> None:
    rec = {"kind": "message", "fields": {"disk.persistent.percent": 93, "a": {"b": "x"}},
           "headers": {"h": "v"}, "retain": True}
    t = Template("x.{fields.disk.persistent.percent}.{fields.a.b}.{headers.h}.{retain}."
                 "{missing}", "nats")
    assert t.render(rec) == "x.93.x.v.true._"
    assert Template("{topic}", "mqtt").render({"topic": "a//b/"}) == "a/_/b/_"
    assert Template("static.name", "nats").static


@pytest.mark.parametrize(("text", "kind"), [("a.*", "nats"), ("a.>", "nats"), ("a/+", "mqtt"),
                                            ("", "mqtt"), ("a.{x:>3}", "nats"), ("a.{", "amqp"),
                                            ("a b", "nats")])
def test_bad_templates_are_config_errors(text: str, kind: str) -> None:
    with pytest.raises(ConfigError):
        Template(text, kind)
