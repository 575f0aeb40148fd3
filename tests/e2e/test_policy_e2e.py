"""``bustap policy`` against real brokers: every case is first tried on the
broker (nats-server 2.9 and 2.15, mosquitto 2.0) with the policy loaded,
then asked of ``policy explain``; the two must agree."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import trustme
from tests.conftest import Bustap, run_bustap
from tests.fixtures.brokers import Mosquitto, NatsServer, mosquitto_passwd, nats_server_binaries
from tests.fixtures.rawclients import MqttProbe, NatsProbe

from bustap.policy import Action, load_policy

pytestmark = pytest.mark.e2e

DATA = Path(__file__).parent.parent / "data" / "policy"
SEED = DATA / "seed002.conf"
PASSWORD = "s3cret-pw"
AGENTS = ("a1", "a2")


def stock_config(seed: str, *, passwords: bool = True) -> str:
    """Seed 002's authorization for stock nats-server: its permission blocks
    as written, ``certificate_clients`` replaced by password users with the
    same names, plus one user per agent id with ``_CLIENT_ID`` filled in
    (what BOSH's nats does for the certificate CN ``<id>.agent.bosh-internal``)."""
    m = re.search(r"  AGENT_PERMISSIONS: \{.*?\n  \}\n", seed, re.S)
    assert m is not None
    per_agent = "".join(m.group(0).replace("AGENT_PERMISSIONS", f"AGENT_{a}_PERMISSIONS")
                        .replace("_CLIENT_ID", a) for a in AGENTS)
    users = [("director.bosh-internal", "DIRECTOR_PERMISSIONS"),
             ("agent.bosh-internal", "AGENT_PERMISSIONS"),
             ("hm.bosh-internal", "HM_PERMISSIONS"),
             *((f"{a}.agent.bosh-internal", f"AGENT_{a}_PERMISSIONS") for a in AGENTS)]
    secret = f', password: "{PASSWORD}"' if passwords else ""
    listing = "".join(f'    {{user: "{u}"{secret}, permissions: ${p}}}\n' for u, p in users)
    text = re.sub(r"  certificate_clients: \[.*?\n  \]\n", f"  users: [\n{listing}  ]\n", seed,
                  flags=re.S)
    return text.replace(m.group(0), m.group(0) + per_agent)


D, A1, HM, AG = ("director.bosh-internal", "a1.agent.bosh-internal", "hm.bosh-internal",
                 "agent.bosh-internal")
P, S = Action.PUBLISH, Action.SUBSCRIBE

# (user, action, subject, allowed): what nats-server decides for seed 002.
SEED_CASES: list[tuple[str | None, Action, str, bool]] = [
    (D, P, "agent.a1", True),
    (D, P, "agent.a1.x", False),
    (D, P, "hm.director.alert", True),
    (D, P, "hm.agent.heartbeat.a1", False),
    (D, P, "director.x", False),
    (D, S, "director.>", True),
    (D, S, "director.p1.a1.r1", True),
    (D, S, "director", False),
    (D, S, "agent.a1", False),
    (D, S, ">", False),
    (HM, P, "anything.at.all", True),  # publish: [] is allow-all
    (HM, P, "agent.a1", True),
    (HM, S, "hm.agent.heartbeat.a1", True),
    (HM, S, "hm.agent.heartbeat.*", True),
    (HM, S, "hm.agent.heartbeat.>", True),  # allow '*' matches the literal token '>'
    (HM, S, "hm.agent.>", False),
    (HM, S, "hm.director.alert", True),
    (HM, S, "hm.director.*", False),
    (HM, S, ">", False),
    (HM, S, "agent.a1", False),
    (A1, P, "hm.agent.heartbeat.a1", True),
    (A1, P, "hm.agent.heartbeat.a2", False),  # spoofing another agent's heartbeat
    (A1, P, "hm.agent.alert.a1", True),
    (A1, P, "hm.agent.shutdown.a1", True),
    (A1, P, "director.p1.a1.r1", True),
    (A1, P, "director.p1.a2.r1", False),
    (A1, P, "director.p1.a1", False),
    (A1, P, "agent.a2", False),
    (A1, S, "agent.a1", True),
    (A1, S, "agent.a2", False),
    (A1, S, "agent.*", False),
    (A1, S, "hm.agent.heartbeat.a1", False),
    (AG, P, "hm.agent.heartbeat._CLIENT_ID", True),  # stock: the token is literal
    (AG, P, "hm.agent.heartbeat.a1", False),
    (AG, S, "agent._CLIENT_ID", True),
    ("mallory", P, "agent.a1", False),  # not a user: refused at CONNECT
    (None, P, "agent.a1", False),
]

SURPRISES = """
accounts {
  A {
    default_permissions: { subscribe: ["A.>"] }
    users = [
      {user: free, password: "PW"}
      {user: ns, password: "PW", permissions: {
        publish: {allow: "*.*", deny: ["SYS.*", "bar.baz", "foo.*"]}
        subscribe: {allow: ["foo.*", "SYS.TEST.>"], deny: ["foo.baz", "SYS.*"]}
      }}
      {user: resp, password: "PW", permissions: {subscribe: "req.>", allow_responses: true}}
      {user: emptyallow, password: "PW", permissions: {publish: {allow: [], deny: "x.y"}}}
    ]
  }
  B {
    users = [ {user: bare, password: "PW"} ]
  }
}
""".replace("PW", PASSWORD)

SURPRISE_CASES: list[tuple[str | None, Action, str, bool]] = [
    ("free", P, "anything", True),  # default_permissions say nothing about publish
    ("free", S, "A.b.c", True),
    ("free", S, "B.x", False),
    ("ns", P, "SANDBOX.foo", True),
    ("ns", P, "baz.bar", True),
    ("ns", P, "foo", False),
    ("ns", P, "foo.bar", False),  # deny wins over allow
    ("ns", P, "SYS.1", False),
    ("ns", S, "foo.bar", True),
    ("ns", S, "foo.*", True),  # a narrower deny does not stop the wildcard
    ("ns", S, "foo.>", True),  # allow 'foo.*' admits 'foo.>'
    ("ns", S, "foo.baz", False),
    ("ns", S, "SYS.TEST.foo", True),
    ("ns", S, "SYS.>", False),
    ("ns", S, "SYS.bar", False),
    ("ns", S, ">", False),
    ("resp", P, "req.x", False),  # allow_responses: only replies
    ("resp", S, "req.x.y", True),
    ("emptyallow", P, "any.thing", True),  # allow: [] is no allow list
    ("emptyallow", P, "x.y", False),
    ("bare", P, "any.subject.at.all", True),
    ("bare", S, ">", True),  # no permissions: everything
]


def probe_nats(server: NatsServer, cases: list[tuple[str | None, Action, str, bool]],
               tls: Callable[[str | None], ssl.SSLContext] | None = None) -> list[bool]:
    """Try each case on the server: one connection per user (by password, or
    by a client certificate naming it when ``tls`` gives the context), a
    PING after each operation to collect the -ERR it caused."""
    conns: dict[str | None, NatsProbe] = {}
    out = []
    for user, action, subject, _ in cases:
        conn = conns.get(user)
        if conn is None:
            if tls is None:
                conn = conns[user] = NatsProbe(server.port, user, PASSWORD)
            else:
                conn = conns[user] = NatsProbe(server.port, tls=tls(user))
        if conn.connect_error:
            out.append(False)
            continue
        err = conn.publish(subject) if action is P else conn.subscribe(subject)
        if err is not None:
            assert "Permissions Violation" in err, err
        out.append(err is None)
    for c in conns.values():
        c.close()
    return out


def _explained(policy_path: Path, cases: list[tuple[str | None, Action, str, bool]]
               ) -> list[bool]:
    policy = load_policy(policy_path)
    return [policy.explain(u, a, s).allowed for u, a, s, _ in cases]


@pytest.mark.parametrize("version", sorted(nats_server_binaries()))
def test_explain_agrees_with_nats_server(version: str, tmp_path: Path,
                                         nats_factory: Callable[..., NatsServer]) -> None:
    binary = nats_server_binaries()[version]
    stock = tmp_path / "stock.conf"
    stock.write_text(stock_config(SEED.read_text()))
    surprises = tmp_path / "surprises.conf"
    surprises.write_text(SURPRISES)
    expected = [c[3] for c in SEED_CASES]
    real = probe_nats(nats_factory(stock.read_text(), binary=binary, name="seed"), SEED_CASES)
    assert real == expected, [c for c, r in zip(SEED_CASES, real, strict=True) if r != c[3]]
    # The seed as written (certificate_clients) and its stock translation.
    assert _explained(SEED, SEED_CASES) == real
    assert _explained(stock, SEED_CASES) == real

    expected = [c[3] for c in SURPRISE_CASES]
    real = probe_nats(nats_factory(SURPRISES, binary=binary, name="surprises"), SURPRISE_CASES)
    assert real == expected, [c for c, r in zip(SURPRISE_CASES, real, strict=True)
                              if r != c[3]]
    assert _explained(surprises, SURPRISE_CASES) == real


@pytest.mark.parametrize("version", sorted(nats_server_binaries()))
def test_explain_agrees_over_client_certificates(version: str, tmp_path: Path,
                                                 nats_factory: Callable[..., NatsServer]
                                                 ) -> None:
    """As in seed 002: each client is named by its TLS certificate
    (``verify_and_map``), no passwords."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {n: tmp_path / f"{n}.pem" for n in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server_cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server_cert.private_key_pem.write_to_path(str(paths["key"]))
    tls_block = (f'tls {{ cert_file: "{paths["cert"]}", key_file: "{paths["key"]}", '
                 f'ca_file: "{paths["ca"]}", verify_and_map: true }}\n')
    server = nats_factory(tls_block + stock_config(SEED.read_text(), passwords=False),
                          binary=nats_server_binaries()[version], name="tls")

    def context(user: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        if user is not None:  # None: a client without a certificate
            ca.issue_cert(user, common_name=user).configure_cert(ctx)
        return ctx

    real = probe_nats(server, SEED_CASES, tls=context)
    assert real == [c[3] for c in SEED_CASES], [c for c, r in zip(SEED_CASES, real,
                                                                   strict=True) if r != c[3]]
    assert _explained(SEED, SEED_CASES) == real


# --- Mosquitto ------------------------------------------------------------------

ACL = """\
# general lines: clients without a user name
topic read public/#
topic write public/anon/+
pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern deny devices/%c/secret

user alice
topic readwrite sensors/#
topic deny sensors/private/#
topic read $SYS/broker/version
topic write $SYS/alice/test
topic read alerts/+

user bob
topic write sensors/bob/+
topic read sensors/bob/#
topic write devices/+/secret

user admin
topic readwrite #
topic read $SYS/#
"""

# (user, client id, action, topic, allowed); for a subscribe the probe
# topic that the observer publishes (the topic itself unless given).
MqttCase = tuple[str | None, str, Action, str, bool]
MOSQ_CASES: list[MqttCase] = [
    (None, "anon-1", P, "public/anon/x", True),
    (None, "anon-1", P, "public/news", False),  # general read only
    (None, "anon-1", S, "public/news", True),
    (None, "anon-1", S, "sensors/a", False),
    (None, "anon-1", P, "devices/anon-1/t", True),  # pattern %c
    (None, "anon-1", P, "devices/anon-1/secret", False),  # pattern deny
    (None, "anon-1", P, "devices/other/t", False),
    ("alice", "alice-1", P, "sensors/a/temp", True),
    ("alice", "alice-1", P, "sensors/private/x", False),  # deny wins
    ("alice", "alice-1", S, "sensors/private/x", False),
    ("alice", "alice-1", S, "sensors/a/temp", True),
    ("alice", "alice-1", P, "public/anon/x", False),  # general lines: anonymous only
    ("alice", "alice-1", S, "public/news", False),
    ("alice", "alice-1", S, "$SYS/broker/version", True),
    ("alice", "alice-1", P, "$SYS/alice/test", False),  # $SYS is never writable
    ("alice", "alice-1", P, "alerts/x", False),  # read, not write
    ("alice", "alice-1", S, "alerts/x", True),
    ("alice", "alice-1", P, "devices/alice-1/t", True),
    ("alice", "alice-1", P, "devices/alice-1/secret", False),
    ("bob", "bob-1", P, "sensors/bob/t", True),
    ("bob", "bob-1", P, "sensors/alice/t", False),
    ("bob", "bob-1", S, "sensors/bob/t", True),
    ("bob", "bob-1", S, "sensors/bob/#", True),
    ("bob", "bob-1", P, "devices/bob-1/secret", True),  # the user's allow beats a pattern deny
    ("bob", "bob-1", P, "devices/bob-1/t", True),
    ("bob", "bob-1", S, "users/bob/inbox", True),  # pattern %u
    ("bob", "bob-1", P, "users/bob/inbox", False),
    ("bob", "bob-1", S, "users/alice/inbox", False),
]
# The same ACL without a password file: any user name logs in.
MOSQ_OPEN_CASES: list[MqttCase] = [
    ("carol", "carol-1", P, "public/anon/x", False),  # no user section: patterns only
    ("carol", "carol-1", S, "public/news", False),
    ("carol", "carol-1", P, "devices/carol-1/t", True),
    ("carol", "carol-1", S, "users/carol/inbox", True),
    ("dan+x", "dan-1", P, "devices/dan-1/t", False),  # '+' in the user name: no patterns
    ("eve", "ev+il", S, "users/eve/inbox", False),  # '+' in the client id: no patterns
]
PROBE = {"sensors/bob/#": "sensors/bob/deep/x"}


def probe_mqtt(broker: Mosquitto, cases: list[MqttCase], passwords: bool) -> list[bool]:
    pw = PASSWORD if passwords else None
    observer = MqttProbe(broker.port, "observer", "admin", pw)
    assert observer.connack == 0
    assert observer.subscribe("#") == 0 and observer.subscribe("$SYS/#") == 0
    conns: dict[tuple[str | None, str], MqttProbe] = {}
    out = []
    for n, (user, cid, action, topic, _) in enumerate(cases):
        conn = conns.get((user, cid))
        if conn is None:
            conn = conns[(user, cid)] = MqttProbe(broker.port, cid, user,
                                                  pw if user is not None else None)
            assert conn.connack == 0, (user, conn.connack)
        mark = f"probe-{n}".encode()
        if action is P:
            conn.publish(topic, mark)
            observer.sync()
            out.append((topic, mark) in observer.received)
        else:
            # mosquitto 2.0 grants every SUBSCRIBE; what the ACL decides is delivery.
            assert conn.subscribe(topic) == 0
            if topic.startswith("$SYS"):
                conn.sync()  # the broker's own retained value
                got = any(t == topic for t, _ in conn.received)
            else:
                observer.publish(PROBE.get(topic, topic), mark)
                conn.sync()
                got = any(p == mark for _, p in conn.received)
            conn.unsubscribe(topic)
            out.append(got)
    for c in [observer, *conns.values()]:
        c.close()
    return out


def _mqtt_explained(policy_path: Path, cases: list[MqttCase],
                    password_file: Path | None = None) -> list[bool]:
    policy = load_policy(policy_path, password_file=password_file)
    return [policy.explain(u, a, t, client_id=c).allowed for u, c, a, t, _ in cases]


def check_mosquitto_log(broker: Mosquitto, acl: Path, pwfile: Path, tmp_path: Path) -> None:
    """``policy check`` on what the probes did, from the broker's own log."""
    store = tmp_path / "mosq.duckdb"
    res = run_bustap("logs", str(broker.log), "-o", str(store))
    assert res.returncode == 0, res.stderr
    res = run_bustap("policy", "check", str(acl), "--password-file", str(pwfile), "--store",
                     str(store), "--format", "json")
    assert res.returncode == 1, res.stderr
    rows = [orjson.loads(x) for x in res.stdout.splitlines()]
    violations = {(r["user"], r["action"], r["subject"]): r for r in rows
                  if r["finding"] == "violation"}
    denied = {(u, a.value, t) for u, _, a, t, ok in MOSQ_CASES if not ok}
    # Every refused publish and every subscription the ACL starves is listed;
    # mosquitto logs "Denied PUBLISH" itself for the publishes.
    assert set(violations) == denied
    assert all(violations[k]["broker_denied"] for k in denied if k[1] == "publish")
    assert not any(r["finding"] == "unknown_user" for r in rows)
    assert "readwrite #" in {r["grant"] for r in rows if r["finding"] == "over_broad"}


def test_explain_agrees_with_mosquitto(tmp_path: Path,
                                       mosquitto_factory: Callable[..., Mosquitto]) -> None:
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    acl.chmod(0o644)
    pwfile = mosquitto_passwd(tmp_path / "passwd", {u: PASSWORD for u in ("alice", "bob",
                                                                             "admin")})
    locked = mosquitto_factory(f"allow_anonymous true\npassword_file {pwfile}\n"
                               f"acl_file {acl}\n", name="locked")
    real = probe_mqtt(locked, MOSQ_CASES, passwords=True)
    assert real == [c[4] for c in MOSQ_CASES], [c for c, r in zip(MOSQ_CASES, real, strict=True)
                                               if r != c[4]]
    assert _mqtt_explained(acl, MOSQ_CASES, pwfile) == real
    check_mosquitto_log(locked, acl, pwfile, tmp_path)
    # A user the password file does not know is refused, as explain says.
    refused = MqttProbe(locked.port, "m-1", "mallory", PASSWORD)
    refused.sock.close()
    assert refused.connack == 5
    assert not load_policy(acl, password_file=pwfile).explain("mallory", P, "public/x").allowed

    opened = mosquitto_factory(f"allow_anonymous true\nacl_file {acl}\n", name="open")
    real = probe_mqtt(opened, MOSQ_OPEN_CASES, passwords=False)
    assert real == [c[4] for c in MOSQ_OPEN_CASES], [
        c for c, r in zip(MOSQ_OPEN_CASES, real, strict=True) if r != c[4]]
    assert _mqtt_explained(acl, MOSQ_OPEN_CASES) == real


# --- policy check on captured traffic -------------------------------------------------

HEARTBEAT = orjson.dumps({"deployment": "cf", "job": "router", "index": 0,
                          "job_state": "running", "vitals": {"cpu": {"sys": "1", "user": "2",
                                                                     "wait": "0"}},
                          "node_id": "n1"})


@pytest.mark.parametrize("version", sorted(nats_server_binaries()))
def test_check_finds_spoofed_heartbeat_forbidden_subscription_unused_grants(
        version: str, tmp_path: Path, nats_factory: Callable[..., NatsServer],
        bustap_bg: Callable[..., Bustap]) -> None:
    conf = stock_config(SEED.read_text()).replace(
        "  users: [\n", f'  users: [\n    {{user: "tap", password: "{PASSWORD}"}}\n')
    server = nats_factory(conf, args=("-DV",), binary=nats_server_binaries()[version])
    store = tmp_path / "store.duckdb"
    cap = bustap_bg("capture", f"nats://tap:{PASSWORD}@127.0.0.1:{server.port}",
                    f"file://{server.log}?format=nats&poll_secs=0.05", "-o", str(store))
    cap.wait_ready(2)

    director = NatsProbe(server.port, D, PASSWORD)
    hm = NatsProbe(server.port, HM, PASSWORD)
    a1 = NatsProbe(server.port, A1, PASSWORD)
    a2 = NatsProbe(server.port, "a2.agent.bosh-internal", PASSWORD)
    assert director.subscribe("director.>") is None
    assert hm.subscribe("hm.agent.heartbeat.*") is None
    assert a1.subscribe("agent.a1") is None
    assert director.publish("agent.a1", b'{"protocol":3,"method":"ping","arguments":[]}') is None
    assert a1.publish("hm.agent.heartbeat.a1", HEARTBEAT) is None
    assert a2.publish("hm.agent.heartbeat.a2", HEARTBEAT) is None
    # a1 speaks for a2, and listens to a2's commands: the server refuses both.
    assert a1.publish("hm.agent.heartbeat.a2", HEARTBEAT) is not None
    assert a1.subscribe("agent.a2") is not None
    for c in (director, hm, a1, a2):
        c.close()
    cap.wait_for(lambda rs: sum(r.get("event") == "acl_denied" for r in rs) >= 2
                 and sum(r.get("kind") == "message" for r in rs) >= 3)
    assert cap.stop() == 0

    res = run_bustap("policy", "check", str(SEED), "--store", str(store), "--format", "json")
    assert res.returncode == 1, res.stderr
    rows = [orjson.loads(x) for x in res.stdout.splitlines()]
    violations = {(r["user"], r["action"], r["subject"]): r for r in rows
                  if r["finding"] == "violation"}
    assert set(violations) == {(A1, "publish", "hm.agent.heartbeat.a2"),
                               (A1, "subscribe", "agent.a2")}
    spoof = violations[(A1, "publish", "hm.agent.heartbeat.a2")]
    assert spoof["broker_denied"] and "a1 acts as a2" in spoof["note"]
    assert violations[(A1, "subscribe", "agent.a2")]["broker_denied"]
    unused = {(r["who"], r["action"], r["subject"]) for r in rows
              if r["finding"] == "unused_grant"}
    assert unused == {
        ("DIRECTOR_PERMISSIONS", "publish", "hm.director.alert"),
        ("AGENT_PERMISSIONS", "publish", "hm.agent.alert._CLIENT_ID"),
        ("AGENT_PERMISSIONS", "publish", "hm.agent.shutdown._CLIENT_ID"),
        ("AGENT_PERMISSIONS", "publish", "director.*._CLIENT_ID.*"),
        ("HM_PERMISSIONS", "subscribe", "hm.agent.alert.*"),
        ("HM_PERMISSIONS", "subscribe", "hm.agent.shutdown.*"),
        ("HM_PERMISSIONS", "subscribe", "hm.director.alert"),
    }
    assert {r["user"] for r in rows if r["finding"] == "unknown_user"} == {"tap"}
    broad = {(r["who"], r["grant"]) for r in rows if r["finding"] == "over_broad"}
    assert ("HM_PERMISSIONS", "publish >") in broad  # publish: [] allows everything

    table = run_bustap("policy", "check", str(SEED), "--store", str(store))
    assert table.returncode == 1
    assert "violations (2)" in table.stdout and "unused grants (7)" in table.stdout
    assert "a1 acts as a2" in table.stdout
    assert PASSWORD not in table.stdout + res.stdout + table.stderr
