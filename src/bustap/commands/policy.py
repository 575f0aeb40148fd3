"""``bustap policy explain|check``: a nats-server authorization or a Mosquitto
acl_file, asked about one case or held against the stored broker events."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..policy import KINDS, Action, Policy, load_policy
from ..policy.check import CheckResult, check
from ._store import add_store_flag, store_target, table_console

HELP = "explain and check permissions (nats-server authorization, Mosquitto acl_file)"


def _policy_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE",
                   help="nats-server config (nats.conf) or Mosquitto acl_file / mosquitto.conf")
    p.add_argument("--kind", choices=KINDS, default="auto",
                   help="what FILE is (default: recognised from its first lines)")
    p.add_argument("--password-file", metavar="FILE",
                   help="Mosquitto password_file: its user names are the known users "
                   "(only the names are kept, never the hashes)")


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help=HELP, description=HELP + ".")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    e = psub.add_parser(
        "explain", help="may USER publish or subscribe to SUBJECT? (exit 0 yes, 1 no)",
        description="Decide one case the way the broker does and name the rule that decides. "
        "Exit 0 when allowed, 1 when denied, 2 on a bad file or subject.",
        epilog="examples:\n"
        "  bustap policy explain nats.conf --user 3f2a.agent.bosh-internal \\\n"
        "         --publish hm.agent.heartbeat.3f2a\n"
        "  bustap policy explain nats.conf --user hm.bosh-internal --subscribe 'hm.agent.>'\n"
        "  bustap policy explain acl --password-file passwd --user alice \\\n"
        "         --subscribe 'sensors/#' --format json\n"
        "  bustap policy explain /etc/mosquitto/mosquitto.conf --client-id dev-1 \\\n"
        "         --publish devices/dev-1/temp   # no --user: a client without a user name",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _policy_flags(e)
    e.add_argument("--user", "-u", metavar="USER",
                   help="user name (NATS: the user, nkey, or certificate name such as "
                   "<id>.agent.bosh-internal); leave out for a client without credentials")
    e.add_argument("--client-id", "-i", metavar="ID",
                   help="MQTT client id, for %%c in Mosquitto patterns")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--publish", metavar="SUBJECT", help="a topic / subject to publish to")
    what.add_argument("--subscribe", metavar="SUBJECT",
                      help="a filter / subject (wildcards allowed) to subscribe to")
    e.add_argument("--format", choices=["table", "json"], default="table",
                   help="table (default) or json: {allowed, rule, reason}")
    e.set_defaults(func=run_explain)

    c = psub.add_parser(
        "check", help="the stored broker events against the policy (exit 1 on violations)",
        description="Hold the policy against what the broker's log recorded (load it with "
        "`bustap logs LOG -o STORE` or capture file://LOG?format=nats|mosquitto; nats-server "
        "needs -DV to log every PUB/SUB with its user, Mosquitto log_type all): violations "
        "(also those the broker itself denied), grants never used, grants wider than needed, "
        "and users the policy does not know. Exit 1 when there are violations.",
        epilog="examples:\n"
        "  bustap policy check nats.conf --store bustap.duckdb --since 24h\n"
        "  bustap policy check /etc/mosquitto/acl --password-file /etc/mosquitto/passwd",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _policy_flags(c)
    add_store_flag(c)
    c.add_argument("--since", metavar="TIME",
                   help="only events from this time: 30m, 2h, 7d (ago), today, ISO 8601")
    c.add_argument("--format", choices=["table", "json"], default="table",
                   help="table (default) or json (one finding per line)")
    c.set_defaults(func=run_check)


def _load(args: argparse.Namespace) -> Policy:
    policy = load_policy(args.file, kind=args.kind, password_file=args.password_file)
    for w in policy.warnings:
        print(f"bustap: note: {w}", file=sys.stderr)
    return policy


def run_explain(args: argparse.Namespace) -> int:
    policy = _load(args)
    action = Action.PUBLISH if args.publish is not None else Action.SUBSCRIBE
    subject = args.publish if args.publish is not None else args.subscribe
    d = policy.explain(args.user, action, subject, client_id=args.client_id)
    if args.format == "json":
        out = {"user": args.user, "action": action.value, "subject": subject, **d.as_json()}
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_APPEND_NEWLINE))
    else:
        who = args.user if args.user is not None else "(no user)"
        verdict = "ALLOWED" if d.allowed else "DENIED"
        print(f"{verdict}: {who} {action.value} {subject}")
        print(f"  rule:   {d.rule or '(none: the broker default)'}")
        print(f"  reason: {d.reason}")
        if d.note:
            print(f"  note:   {d.note}")
    return 0 if d.allowed else 1


def run_check(args: argparse.Namespace) -> int:
    from ..store.backend import open_store
    from ..store.query import Filters
    from ..store.search import iterate
    from ..store.timeparse import parse_time

    policy = _load(args)
    since = parse_time(args.since, what="--since") if args.since else None
    filters = Filters(kinds=["broker_event"], since=since)
    with open_store(store_target(args)) as store:
        result = check(policy, (r for chunk in iterate(store, filters) for r in chunk))
    if args.format == "json":
        _json(result)
    else:
        _table(policy, result)
    return 1 if result.violations else 0


def _json(result: CheckResult) -> None:
    rows: list[dict[str, Any]] = []
    for v in result.violations:
        rows.append({"finding": "violation", "user": v.user, "client_id": v.client_id,
                     "action": v.action.value, "subject": v.subject, "count": v.count,
                     "broker_denied": v.denied > 0, "rule": v.decision.rule,
                     "reason": v.reason, "note": v.decision.note,
                     "first_seen": v.first_seen, "last_seen": v.last_seen})
    for u in result.unused:
        rows.append({"finding": "unused_grant", "who": u.grant.who,
                     "action": u.grant.action.value if u.grant.action else "readwrite",
                     "subject": u.grant.pattern, "rule": u.grant.rule,
                     "holder_seen": u.seen_users})
    for b in result.broad:
        rows.append({"finding": "over_broad", "who": b.who, "grant": b.what, "rule": b.rule,
                     "reason": b.why})
    for k in result.unknown:
        rows.append({"finding": "unknown_user", "user": k.user, "count": k.count,
                     "events": sorted(k.events), "first_seen": k.first_seen})
    sys.stdout.buffer.write(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE)
                                     for r in rows))


def _table(policy: Policy, result: CheckResult) -> None:
    from rich.table import Table
    from rich.text import Text

    with table_console() as console:
        console.print(f"{policy.path}: {result.events} publish/subscribe events from "
                      f"{len(result.users_seen)} known users checked", markup=False)
        if not result.events:
            console.print("no PUB/SUB events in the store: load the broker's log (nats-server -DV, "
                          "mosquitto log_type all) with `bustap logs LOG -o STORE`")

        def section(title: str, columns: list[str], rows: list[list[str]]) -> None:
            console.print()
            if not rows:
                console.print(f"{title}: none", markup=False)
                return
            t = Table(title=f"{title} ({len(rows)})", title_justify="left", box=None,
                      pad_edge=False)
            for c in columns:
                t.add_column(c, overflow="fold")
            for r in rows:
                t.add_row(*(Text(c) for c in r))  # subjects and rules are not markup
            console.print(t)

        section("violations", ["user", "action", "subject", "count", "broker", "rule", "reason"],
                [[v.user or "(no user)", v.action.value, v.subject, str(v.count),
                  "denied" if v.denied else "-",
                  v.decision.rule or "-",
                  v.reason + (f"; {v.decision.note}" if v.decision.note else "")]
                 for v in result.violations])
        section("unused grants", ["who", "action", "subject", "rule", "note"],
                [[u.grant.who, u.grant.action.value if u.grant.action else "readwrite",
                  u.grant.pattern, u.grant.rule,
                  "" if u.seen_users else "none of its users was seen"] for u in result.unused])
        section("over-broad grants", ["who", "grant", "rule", "why"],
                [[b.who, b.what, b.rule, b.why] for b in result.broad])
        section("unknown users", ["user", "count", "events", "first seen"],
                [[k.user, str(k.count), ", ".join(sorted(k.events)), str(k.first_seen or "")]
                 for k in result.unknown])
