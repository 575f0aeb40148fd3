"""MQTT topic filters and NATS subjects: validation and matching.

The rules and their test vectors are in ``shared/reference/protocols-and-security.md``
sections 1 and 2. Matching is byte-exact and case-sensitive; nothing is
normalised. Invalid filters raise :class:`~bustap.errors.ConfigError` naming
the filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from .errors import ConfigError

MQTT_MAX_BYTES = 65_535
MOSQUITTO_MAX_LEVELS = 200  # TOPIC_HIERARCHY_LIMIT in mosquitto_broker_internal.h
_NATS_WHITESPACE = frozenset(" \t\n\f\r")


# --- MQTT -----------------------------------------------------------------

def split_shared(topic_filter: str) -> tuple[str | None, str]:
    """``$share/GROUP/filter`` -> ``(GROUP, filter)``; other filters -> ``(None, filter)``."""
    if not topic_filter.startswith("$share/"):
        return None, topic_filter
    rest = topic_filter[len("$share/"):]
    group, sep, inner = rest.partition("/")
    if not sep:
        raise ConfigError(f"invalid MQTT filter {topic_filter!r}: $share needs a group and a "
                          "filter ($share/GROUP/FILTER)", value=topic_filter)
    if not group or any(c in group for c in "+#"):
        raise ConfigError(f"invalid MQTT filter {topic_filter!r}: the share name must be "
                          "non-empty without '+' or '#'", value=topic_filter)
    if not inner:
        raise ConfigError(f"invalid MQTT filter {topic_filter!r}: empty filter after the "
                          "share name", value=topic_filter)
    return group, inner


def _check_common(kind: str, value: str) -> None:
    if not value:
        raise ConfigError(f"invalid MQTT {kind}: empty", value=value)
    if "\x00" in value:
        raise ConfigError(f"invalid MQTT {kind} {value!r}: contains U+0000", value=value)
    if len(value.encode("utf-8", "surrogatepass")) > MQTT_MAX_BYTES:
        raise ConfigError(f"invalid MQTT {kind}: longer than 65535 bytes", value=value[:80])
    if value.count("/") > MOSQUITTO_MAX_LEVELS:
        raise ConfigError(f"invalid MQTT {kind} {value[:80]!r}: more than 200 levels",
                          value=value[:80])


def validate_mqtt_filter(topic_filter: str) -> str:
    """Return the filter if it is valid, else raise ConfigError."""
    _check_common("filter", topic_filter)
    _, inner = split_shared(topic_filter)
    levels = inner.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ConfigError(f"invalid MQTT filter {topic_filter!r}: '#' must be a whole "
                              "level and the last one", value=topic_filter)
        if "+" in level and level != "+":
            raise ConfigError(f"invalid MQTT filter {topic_filter!r}: '+' must fill a whole "
                              "level", value=topic_filter)
    return topic_filter


def validate_mqtt_topic(topic: str) -> str:
    """A PUBLISH topic name: like a filter, without wildcards."""
    _check_common("topic", topic)
    if "+" in topic or "#" in topic:
        raise ConfigError(f"invalid MQTT topic {topic!r}: wildcards are not allowed in a "
                          "topic name", value=topic)
    return topic


def is_mqtt_filter_valid(topic_filter: str) -> bool:
    try:
        validate_mqtt_filter(topic_filter)
    except ConfigError:
        return False
    return True


@lru_cache(maxsize=4096)
def _mqtt_levels(topic_filter: str) -> tuple[str, ...]:
    return tuple(split_shared(topic_filter)[1].split("/"))


def mqtt_match(topic_filter: str, topic: str) -> bool:
    """Does ``topic`` (a topic name) match ``topic_filter``? Invalid filters match nothing."""
    if not is_mqtt_filter_valid(topic_filter):
        return False
    return _mqtt_match_levels(_mqtt_levels(topic_filter), topic.split("/"))


def _mqtt_match_levels(flt: tuple[str, ...], top: list[str]) -> bool:
    # [MQTT-4.7.2-1]: a leading wildcard never matches a $-topic.
    if flt and flt[0] in ("#", "+") and top[0].startswith("$"):
        return False
    for i, level in enumerate(flt):
        if level == "#":
            return True  # matches the parent level too (sport/# matches sport)
        if i >= len(top):
            return False
        if level != "+" and level != top[i]:
            return False
    return len(flt) == len(top)


# --- NATS -----------------------------------------------------------------

def validate_nats_subject(subject: str, *, wildcards: bool = True) -> str:
    """Return the subject if valid (as a subscription when ``wildcards``, else
    as a publish subject), else raise ConfigError."""
    if not subject:
        raise ConfigError("invalid NATS subject: empty", value=subject)
    tokens = subject.split(".")
    for i, tok in enumerate(tokens):
        if not tok:
            raise ConfigError(f"invalid NATS subject {subject!r}: empty token", value=subject)
        if any(c in _NATS_WHITESPACE for c in tok):
            raise ConfigError(f"invalid NATS subject {subject!r}: contains whitespace",
                              value=subject)
        if "\x00" in tok:
            raise ConfigError(f"invalid NATS subject {subject!r}: contains U+0000",
                              value=subject)
        if tok == ">" and i != len(tokens) - 1:
            raise ConfigError(f"invalid NATS subject {subject!r}: '>' must be the last token",
                              value=subject)
        if not wildcards and tok in ("*", ">"):
            raise ConfigError(f"invalid NATS publish subject {subject!r}: wildcards are not "
                              "allowed", value=subject)
    return subject


def is_nats_subject_valid(subject: str, *, wildcards: bool = True) -> bool:
    try:
        validate_nats_subject(subject, wildcards=wildcards)
    except ConfigError:
        return False
    return True


@lru_cache(maxsize=4096)
def _nats_tokens(subject: str) -> tuple[str, ...]:
    return tuple(subject.split("."))


def nats_match(pattern: str, subject: str) -> bool:
    """Does the literal ``subject`` match the subscription ``pattern``?
    ``*`` is one token, ``>`` one or more; only whole tokens are wildcards."""
    if not is_nats_subject_valid(pattern):
        return False
    pat = _nats_tokens(pattern)
    sub = subject.split(".")
    for i, tok in enumerate(pat):
        if tok == ">":
            return len(sub) > i
        if i >= len(sub):
            return False
        if tok != "*" and tok != sub[i]:
            return False
    return len(pat) == len(sub)


# --- protocol-neutral helpers --------------------------------------------

def matches(protocol: str, pattern: str, topic: str) -> bool:
    """Match by the rules of ``protocol`` (``mqtt`` or ``nats``/``jetstream``)."""
    if protocol == "mqtt":
        return mqtt_match(pattern, topic)
    return nats_match(pattern, topic)


def valid_for(protocol: str, pattern: str) -> bool:
    if protocol == "mqtt":
        return is_mqtt_filter_valid(pattern)
    return is_nats_subject_valid(pattern)


class TopicSet:
    """A set of filters of one protocol, matched with a per-topic cache
    (bounded: a bus has far fewer distinct topics than messages)."""

    __slots__ = ("_cache", "patterns", "protocol")

    def __init__(self, protocol: str, patterns: Iterable[str]) -> None:
        self.protocol = protocol
        self.patterns = tuple(patterns)
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __contains__(self, topic: object) -> bool:
        if not isinstance(topic, str):
            return False
        hit = self._cache.get(topic)
        if hit is None:
            hit = any(matches(self.protocol, p, topic) for p in self.patterns)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[topic] = hit
        return hit
