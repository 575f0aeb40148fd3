"""Mosquitto acl_file parsing and decisions (the live-broker agreement is in
tests/e2e/test_policy_e2e.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bustap.errors import ConfigError
from bustap.policy import Action, detect_kind, load_policy
from bustap.policy.mosquitto_acl import READ, WRITE, MosquittoPolicy, parse_acl, password_users
from bustap.topics import mqtt_match

P, S = Action.PUBLISH, Action.SUBSCRIBE

ACL = """\
topic read public/#
pattern readwrite devices/%c/#
pattern deny devices/%c/secret
pattern read users/%u/inbox

user alice
topic readwrite sensors/#
topic deny sensors/private/#
topic read $SYS/broker/version
topic read alerts/+
user bob
topic write devices/+/secret
"""


def policy(text: str = ACL, users: list[str] | None = None) -> MosquittoPolicy:
    return MosquittoPolicy("acl", parse_acl(text.splitlines()), known_users=users,
                           allow_anonymous=None)


def test_parse_follows_mosquitto() -> None:
    rules = parse_acl(["# comment", "", "topic a/b", "topic read", "user  carol smith ",
                       "topic write x/#", "pattern deny %u/#"])
    assert [(r.access, r.topic, r.user, r.pattern) for r in rules] == [
        (READ | WRITE, "a/b", None, False),
        (READ | WRITE, "read", None, False),  # a lone word is the topic, readwrite
        (WRITE, "x/#", "carol smith", False),
        (0, "%u/#", None, True),
    ]
    assert rules[2].line == 6


@pytest.mark.parametrize(("line", "message"), [
    ("topic sometimes a/b", "invalid topic access type 'sometimes'"),
    ("  # indented comment", "invalid line"),
    ("topic read a/#/b", "invalid ACL topic"),
    ("user", "missing username"),
    ("subscribe a/b", "invalid line"),
])
def test_parse_errors_name_the_line(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_acl(["topic read ok", line], "acl")


def test_general_lines_are_for_anonymous_clients_only() -> None:
    p = policy()
    assert p.explain(None, S, "public/news").allowed
    d = p.explain("alice", S, "public/news")
    assert not d.allowed and "anonymous clients only" in d.reason
    d = p.explain("carol", S, "public/news")
    assert not d.allowed and "no user section" in d.reason


def test_deny_wins_read_vs_write_and_sys() -> None:
    p = policy()
    assert p.explain("alice", P, "sensors/a").allowed
    d = p.explain("alice", P, "sensors/private/x")
    assert not d.allowed and d.rule == "user alice: topic deny sensors/private/# (acl:8)"
    assert not p.explain("alice", P, "alerts/x").allowed
    assert p.explain("alice", S, "alerts/x").allowed
    assert p.explain("alice", S, "$SYS/broker/version").allowed
    assert not p.explain("alice", S, "$SYS/broker/uptime").allowed  # '#' never covers $SYS
    d = p.explain("alice", P, "$SYS/broker/version")
    assert not d.allowed and d.rule == "$SYS (built in)"


def test_patterns_and_their_order() -> None:
    p = policy()
    assert p.explain("alice", P, "devices/c1/t", client_id="c1").allowed
    assert not p.explain("alice", P, "devices/c1/secret", client_id="c1").allowed
    assert p.explain("bob", P, "devices/c1/secret", client_id="c1").allowed  # own line first
    assert p.explain("bob", S, "users/bob/inbox").allowed
    assert not p.explain(None, S, "users/bob/inbox").allowed  # %u needs a user name
    d = p.explain("bob", P, "devices/c1/t")
    assert not d.allowed and "needs --client-id" in d.reason
    d = p.explain("b+b", P, "devices/c1/t", client_id="c1")
    assert not d.allowed and "contains '+' or '#'" in d.reason


def test_subscribe_with_wildcards_is_allowed_only_when_covered() -> None:
    p = policy()
    assert p.explain("alice", S, "sensors/room1/#").allowed
    d = p.explain("alice", S, "sensors/#")
    assert not d.allowed and "deny" in (d.rule or "") and "SUBACK" in d.reason
    assert not p.explain("alice", S, "#").allowed
    with pytest.raises(ConfigError):
        p.explain("alice", P, "sensors/+")


def test_password_file_gives_user_names_only(tmp_path: Path) -> None:
    pw = tmp_path / "passwd"
    hashed = "$7$101$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNo"
    pw.write_text(f"alice:{hashed}\n# admin:x\nbroken line\nbob:{hashed}\n")
    assert password_users(pw) == ["alice", "bob"]
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    p = load_policy(acl, password_file=pw)
    assert hashed not in repr(vars(p))
    d = p.explain("mallory", P, "public/x")
    assert not d.allowed and d.rule == "password_file"
    assert p.knows("bob") and not p.knows("carol")


def test_mosquitto_conf_names_the_files(tmp_path: Path) -> None:
    (tmp_path / "acl").write_text(ACL)
    (tmp_path / "passwd").write_text("alice:x\n")
    main = tmp_path / "mosquitto.conf"
    main.write_text("listener 1883\nallow_anonymous false\nacl_file acl\n"
                    "password_file passwd\n")
    assert detect_kind(main) == "mosquitto" and detect_kind(tmp_path / "acl") == "mosquitto"
    p = load_policy(main)
    assert p.users() == ["alice", "bob"]
    d = p.explain(None, S, "public/news")
    assert not d.allowed and d.rule == "allow_anonymous false"


def test_breadth_and_grants() -> None:
    p = policy("topic readwrite #\nuser a\ntopic read +/x\ntopic write $SYS/y\n")
    assert [b.what for b in p.breadth()] == ["readwrite #", "read +/x", "write $SYS/y"]
    assert [g.id for g in p.grants()] == ["acl:1", "acl:3", "acl:4"]


# --- properties -------------------------------------------------------------------

level = st.sampled_from(["a", "b", "c"])
topic = st.lists(level, min_size=1, max_size=3).map("/".join)
rule_filter = st.lists(st.sampled_from(["a", "b", "+"]), min_size=1, max_size=3).flatmap(
    lambda lv: st.sampled_from(["/".join(lv), "/".join([*lv, "#"])]))
line = st.tuples(st.sampled_from(["read", "write", "readwrite", "deny"]), rule_filter)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(line, max_size=6), subject=topic, publish=st.booleans(),
       seed=st.integers(0, 1000))
def test_user_lines_decide_as_mosquitto(lines: list[tuple[str, str]], subject: str,
                                        publish: bool, seed: int) -> None:
    text = "user u\n" + "".join(f"topic {a} {t}\n" for a, t in lines)
    action = P if publish else S
    want = "write" if publish else "read"
    matching = [a for a, t in lines if mqtt_match(t, subject)]
    expected = "deny" not in matching and any(a in (want, "readwrite") for a in matching)
    assert policy(text).explain("u", action, subject).allowed is expected
    shuffled = lines[:]
    random.Random(seed).shuffle(shuffled)  # order never matters: denies go first
    text = "user u\n" + "".join(f"topic {a} {t}\n" for a, t in shuffled)
    assert policy(text).explain("u", action, subject).allowed is expected
