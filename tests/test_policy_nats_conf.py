"""nats-server config syntax and authorization decisions (the live-server
agreement is in tests/e2e/test_policy_e2e.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bustap.errors import ConfigError
from bustap.policy import Action, load_policy
from bustap.policy._conf_syntax import Block, Text, parse_conf
from bustap.policy.nats_conf import NatsPolicy
from bustap.topics import nats_match

SEED = Path(__file__).parent / "data" / "policy" / "seed002.conf"
P, S = Action.PUBLISH, Action.SUBSCRIBE


def conf(text: str, tmp_path: Path | None = None) -> NatsPolicy:
    path = (tmp_path or Path("/nonexistent")) / "nats.conf"
    return NatsPolicy.from_conf(parse_conf(text, path), str(path))


# --- syntax ---------------------------------------------------------------------

def test_seed_002_parses_exactly_as_written() -> None:
    tree = parse_conf(SEED.read_text(), SEED)
    auth = tree["authorization"]
    assert isinstance(auth, Block)
    assert auth["DIRECTOR_PERMISSIONS"]["publish"] == ["agent.*", "hm.director.alert"]
    assert auth["HM_PERMISSIONS"]["publish"] == []
    clients = auth["certificate_clients"]
    assert [c["client_name"] for c in clients] == ["director.bosh-internal",
                                                   "agent.bosh-internal", "hm.bosh-internal"]
    # $AGENT_PERMISSIONS is the block written above, reached through the variable
    assert clients[1]["permissions"].var == "AGENT_PERMISSIONS"
    assert clients[1]["permissions"]["subscribe"] == ["agent._CLIENT_ID"]
    assert auth["timeout"] == 30
    first = auth["DIRECTOR_PERMISSIONS"]["publish"][0]
    assert isinstance(first, Text) and first.line == 4


def test_separators_comments_quotes_and_scalars() -> None:
    tree = parse_conf('''
        # comment
        a = 1; b: "two\\tx" // another comment
        c 'it is'
        d [1, 2,
           3,]
        e { f: yes, g: off }
        h: 1.5
        i: "\\u0041"
        listen: 0.0.0.0:4222
    ''', Path("x.conf"))
    assert tree["a"] == 1 and tree["b"] == "two\tx" and tree["c"] == "it is"
    assert tree["d"] == [1, 2, 3]
    assert tree["e"] == {"f": True, "g": False}
    assert tree["h"] == 1.5 and tree["i"] == "A" and tree["listen"] == "0.0.0.0:4222"


def test_variables_resolve_from_enclosing_blocks_then_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSTAP_TEST_SUBJ", "from.env")
    tree = parse_conf('''
        TOP: "top.level"
        outer { INNER: "inner.subj"
                x { a: $TOP, b: $INNER, c: $BUSTAP_TEST_SUBJ } }
    ''', Path("x.conf"))
    assert tree["outer"]["x"] == {"a": "top.level", "b": "inner.subj", "c": "from.env"}


def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "auth.conf").write_text('users = [ {user: a, password: p} ]\n')
    main = tmp_path / "nats.conf"
    main.write_text("port: 4222\nauthorization {\n  include 'auth.conf'\n}\n")
    policy = load_policy(main)
    assert policy.users() == ["a"]


@pytest.mark.parametrize(("text", "message"), [
    ("a: $NOPE_NOT_SET_ANYWHERE", "nats.conf:1: variable reference for 'NOPE_NOT_SET_ANYWHERE'"),
    ('a: "open', "unterminated string"),
    ("a { b: 1", "missing '}'"),
    ("a: [1, 2", "missing ']'"),
    ("authorization { users = [ {user: a, permissions: {publish: 'a..b'}} ] }",
     "'a..b' is not a valid subject"),
    ("include 'missing.conf'", "cannot include"),
])
def test_errors_name_the_line_and_the_value(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "nats.conf"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("$", r"\$")):
        load_policy(path)


# --- decisions --------------------------------------------------------------------

def test_seed_certificate_clients_fill_in_client_id() -> None:
    policy = load_policy(SEED)
    agent = "3f2a.agent.bosh-internal"
    assert policy.explain(agent, P, "hm.agent.heartbeat.3f2a").allowed
    spoof = policy.explain(agent, P, "hm.agent.heartbeat.9c1d")
    assert not spoof.allowed and spoof.note == (
        "3f2a acts as 9c1d: hm.agent.heartbeat.9c1d is 9c1d's subject")
    assert policy.explain(agent, S, "agent.3f2a").allowed
    assert not policy.explain(agent, S, "agent.9c1d").allowed
    assert policy.knows(agent) and not policy.knows("3f2a.agent.other")
    assert any("BOSH" in w for w in policy.warnings)


def test_empty_publish_list_is_allow_all_and_says_so() -> None:
    d = load_policy(SEED).explain("hm.bosh-internal", P, "agent.anything")
    assert d.allowed and d.rule is None and "empty list" in d.reason


def test_decision_names_the_rule_and_line() -> None:
    d = load_policy(SEED).explain("director.bosh-internal", P, "agent.x")
    assert d.rule == 'DIRECTOR_PERMISSIONS.publish.allow "agent.*" (seed002.conf:4)'
    assert d.as_json() == {"allowed": True, "rule": d.rule, "reason": d.reason}


def test_deny_wins_and_narrow_deny_does_not_block_wildcard_subscription() -> None:
    policy = conf('''authorization { users = [ {user: ns, permissions: {
        publish: {allow: "*.*", deny: ["foo.*"]}
        subscribe: {allow: ["foo.*"], deny: ["foo.baz"]} }} ] }''')
    d = policy.explain("ns", P, "foo.bar")
    assert not d.allowed and d.rule is not None and "deny" in d.rule
    d = policy.explain("ns", S, "foo.*")
    assert d.allowed and "foo.baz are dropped at delivery" in d.reason
    assert policy.explain("ns", S, "foo.>").allowed
    assert not policy.explain("ns", S, "foo.baz").allowed


def test_default_permissions_no_permissions_and_no_auth_user() -> None:
    policy = conf('''
        no_auth_user: guest
        authorization {
          default_permissions: { publish: "pub.>" }
          users = [ {user: guest, password: x}, {user: boss, password: y,
                     permissions: {subscribe: ">"}} ] }''')
    assert policy.explain("guest", P, "pub.x").allowed
    assert not policy.explain("guest", P, "other").allowed
    assert policy.explain(None, P, "pub.x").allowed  # no_auth_user
    assert policy.explain("boss", P, "anything").allowed  # its own block has no publish list
    free = conf("authorization { users = [ {user: free, password: x} ] }")
    d = free.explain("free", S, ">")
    assert d.allowed and "no permissions" in d.reason
    assert not free.explain(None, P, "x").allowed
    assert not free.explain("stranger", P, "x").allowed
    assert conf("port: 4222").explain(None, S, ">").allowed  # no auth at all
    assert conf("authorization { token: t0ken }").explain(None, P, "x").allowed


def test_allow_responses_turns_publish_off() -> None:
    policy = conf('''authorization { users = [
        {user: svc, permissions: {subscribe: "req.>", allow_responses: {max: -1}}}
        {user: svc2, permissions: {publish: "ok.>", allow_responses: true}} ] }''')
    d = policy.explain("svc", P, "anything")
    assert not d.allowed and "allow_responses" in (d.rule or "")
    assert policy.explain("svc2", P, "ok.x").allowed
    assert any(b.what == "allow_responses" for b in policy.breadth())


def test_accounts_users_and_queue_entries() -> None:
    policy = conf('''accounts { A { users = [ {user: a, permissions: {
        subscribe: {allow: ["work v1", "plain"]} }} ] } }''')
    assert policy.explain("a", S, "plain").allowed
    assert not policy.explain("a", S, "work").allowed  # only the queue subscription may


def test_over_broad_grants() -> None:
    policy = conf('''authorization { users = [
        {user: a, permissions: {publish: ">", subscribe: ["_INBOX.>", "x.*", "*.y"]}} ] }''')
    whys = {b.what: b.why for b in policy.breadth()}
    assert set(whys) == {'publish ">"', 'subscribe "_INBOX.>"', 'subscribe "x.*"',
                         'subscribe "*.y"'}
    assert "x.>" in whys['subscribe "x.*"']


def test_invalid_subject_asked_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        load_policy(SEED).explain("hm.bosh-internal", P, "hm.*")


# --- properties -------------------------------------------------------------------

token = st.sampled_from(["a", "b", "c"])
pattern = st.lists(st.one_of(token, st.just("*")), min_size=1, max_size=3).flatmap(
    lambda toks: st.sampled_from([".".join(toks), ".".join([*toks, ">"])]))
literal = st.lists(token, min_size=1, max_size=4).map(".".join)


@settings(max_examples=300, deadline=None)
@given(allow=st.lists(pattern, max_size=3), deny=st.lists(pattern, max_size=3),
       subject=literal, style=st.sampled_from(["list", "map", "string"]))
def test_publish_decision_is_allow_then_deny(allow: list[str], deny: list[str], subject: str,
                                             style: str) -> None:
    quoted = ", ".join(f'"{a}"' for a in allow)
    if style == "list" or (style == "string" and len(allow) != 1):
        block = f"publish: [{quoted}]"
        deny = []
    elif style == "string":
        block = f'publish = "{allow[0]}"'
        deny = []
    else:
        denied = ", ".join(f'"{d}"' for d in deny)
        block = f"publish {{ allow: [{quoted}]\n deny: [{denied}] }}"
    policy = conf(f"authorization {{ users = [ {{user: u, permissions: {{ {block} }} }} ] }}")
    allowed = (not allow or any(nats_match(a, subject) for a in allow)) and \
        not any(nats_match(d, subject) for d in deny)
    assert policy.explain("u", P, subject).allowed is allowed


@settings(max_examples=300, deadline=None)
@given(allow=st.lists(pattern, max_size=3), deny=st.lists(pattern, max_size=3),
       request=st.one_of(literal, pattern))
def test_subscribe_request_is_matched_as_a_literal_subject(allow: list[str], deny: list[str],
                                                           request: str) -> None:
    quoted = ", ".join(f'"{a}"' for a in allow)
    denied = ", ".join(f'"{d}"' for d in deny)
    policy = conf(f"authorization {{ users = [ {{user: u, permissions: {{ subscribe: "
                  f"{{ allow: [{quoted}], deny: [{denied}] }} }} }} ] }}")
    # canSubscribeInternal: Sublist.Match(request) treats the request's own
    # '*' and '>' as plain tokens: the allow '*' matches a '>' token.
    allowed = (not allow or any(nats_match(a, request) for a in allow)) and \
        not any(nats_match(d, request) for d in deny)
    assert policy.explain("u", S, request).allowed is allowed


def test_a_user_entry_that_is_not_a_map_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        conf('authorization { users = [ "alice:hunter2" ] }')
    assert "hunter2" not in str(err.value)
