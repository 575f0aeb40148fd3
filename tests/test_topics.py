"""MQTT filter and NATS subject rules: every vector of the reference
(shared/reference/protocols-and-security.md sections 1 and 2), plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bustap.errors import ConfigError
from bustap.topics import (
    TopicSet,
    is_mqtt_filter_valid,
    is_nats_subject_valid,
    mqtt_match,
    nats_match,
    split_shared,
    validate_mqtt_topic,
    validate_nats_subject,
)

MQTT_VECTORS = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("#", "/finance", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("/finance", "finance", False),
    ("ACCOUNTS", "Accounts", False),
    ("#", "$SYS/broker/uptime", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("$SYS/#", "$SYS", True),
    ("foo/#", "foo/", True),
    ("foo//bar", "foo//bar", True),
    ("foo/+/+/baz", "foo///baz", True),
    ("foo/+/#", "foo/bar", True),
    ("A/B/+/#", "A/B/B/C", True),
    ("/#", "foo/bar", False),
    ("foo/bar", "foo", False),
    ("test/6/#", "test/3", False),
    ("/", "/", True),
    ("+/+", "/", True),
    ("$share/consumer1/sport/tennis/+", "sport/tennis/player1", True),
    ("$share/consumer1//finance", "/finance", True),
    ("$share/g/#", "$SYS/broker/uptime", False),
]

INVALID_MQTT = ["sport/tennis#", "sport/tennis/#/ranking", "sport+", "foo/+bar", "+#", "",
                "$share/g", "$share//a", "$share/gr+oup/a", "$share/g/"]


@pytest.mark.parametrize(("flt", "topic", "expected"), MQTT_VECTORS)
def test_mqtt_vectors(flt: str, topic: str, expected: bool) -> None:
    assert mqtt_match(flt, topic) is expected


@pytest.mark.parametrize("flt", INVALID_MQTT)
def test_invalid_mqtt_filters(flt: str) -> None:
    assert not is_mqtt_filter_valid(flt)
    assert not mqtt_match(flt, "sport/tennis")


def test_publish_topic_rejects_wildcards() -> None:
    with pytest.raises(ConfigError, match="wildcards"):
        validate_mqtt_topic("a/+")
    assert validate_mqtt_topic("/junos/events/kernel") == "/junos/events/kernel"


def test_mqtt_limits() -> None:
    assert not is_mqtt_filter_valid("a\x00b")
    assert not is_mqtt_filter_valid("a" * 65_536)
    assert not is_mqtt_filter_valid("/".join(["a"] * 202))  # mosquitto's 200-level limit


def test_split_shared() -> None:
    assert split_shared("$share/g1/a/+") == ("g1", "a/+")
    assert split_shared("a/b") == (None, "a/b")


NATS_VECTORS = [
    ("time.*.east", "time.us.east", True),
    ("time.us.>", "time.us.east.atlanta", True),
    ("time.us.*", "time.us.east.atlanta", False),
    ("*.*.*.>", "time.us.east.atlanta", True),
    ("foo.>", "foo", False),
    (">", "foo", True),
    ("*", "foo.bar", False),
    ("stats.*.*", "stats.test.22", True),
    ("stats.test.*", "stats.test", False),
    ("stats.*.*.foos", "stats.test.foos", False),
    ("foo*", "foo*", True),
    ("foo*", "fooX", False),
    ("foo.*bar", "foo.xbar", False),
    ("Foo.bar", "foo.bar", False),
]


@pytest.mark.parametrize(("sub", "subject", "expected"), NATS_VECTORS)
def test_nats_vectors(sub: str, subject: str, expected: bool) -> None:
    assert nats_match(sub, subject) is expected


@pytest.mark.parametrize("subject", ["foo..bar", ".foo", "foo.", "foo.>.bar", ">.bar",
                                     "foo bar", ""])
def test_invalid_nats_subjects(subject: str) -> None:
    assert not is_nats_subject_valid(subject)
    with pytest.raises(ConfigError) as info:
        validate_nats_subject(subject)
    assert info.value.value == subject


def test_nats_publish_subject_must_be_literal() -> None:
    assert not is_nats_subject_valid("foo.*", wildcards=False)
    assert is_nats_subject_valid("foo*.bar>", wildcards=False)  # literal tokens


def test_topicset_caches_and_matches() -> None:
    ts = TopicSet("mqtt", ["sensors/#", "$SYS/#"])
    assert "sensors/a/b" in ts and "$SYS/broker/uptime" in ts
    assert "other" not in ts
    assert not TopicSet("nats", [])


# --- properties -------------------------------------------------------------

level = st.text(alphabet=st.characters(blacklist_characters="/+#\x00",
                                       blacklist_categories=("Cs",)), max_size=4)
topics = st.lists(level, min_size=1, max_size=6).map("/".join).filter(bool)
tokens = st.text(alphabet="abcXYZ019-_$", min_size=1, max_size=4)
subjects = st.lists(tokens, min_size=1, max_size=6).map(".".join)


@given(topics)
def test_mqtt_topic_matches_itself_and_hash(topic: str) -> None:
    assert mqtt_match(topic, topic)
    assert mqtt_match("#", topic) is (not topic.startswith("$"))


@given(topics, st.data())
def test_mqtt_plus_replaces_any_level(topic: str, data: st.DataObject) -> None:
    levels = topic.split("/")
    i = data.draw(st.integers(0, len(levels) - 1))
    flt = "/".join("+" if j == i else lvl for j, lvl in enumerate(levels))
    assert mqtt_match(flt, topic) is not (i == 0 and topic.startswith("$"))


@given(topics, st.data())
def test_mqtt_hash_matches_prefix_and_descendants(topic: str, data: st.DataObject) -> None:
    levels = topic.split("/")
    i = data.draw(st.integers(1, len(levels)))
    prefix = "/".join(levels[:i])
    assert mqtt_match(prefix + "/#", topic)


@given(subjects, st.data())
def test_nats_wildcards(subject: str, data: st.DataObject) -> None:
    toks = subject.split(".")
    assert nats_match(subject, subject)
    assert nats_match(">", subject)
    i = data.draw(st.integers(0, len(toks) - 1))
    star = ".".join("*" if j == i else t for j, t in enumerate(toks))
    assert nats_match(star, subject)
    if len(toks) > 1:
        assert nats_match(".".join(toks[:-1]) + ".>", subject)
    assert not nats_match(subject + ".>", subject)  # '>' needs at least one more token


@given(st.text(max_size=30))
def test_validators_never_crash(text: str) -> None:
    is_mqtt_filter_valid(text)
    is_nats_subject_valid(text)
    mqtt_match(text, "a/b")
    nats_match(text, "a.b")
