"""``bustap alerts``: the alerts in a store (exit 1 while some fire), and
``--test RULES``: what rules would have raised over stored records."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

from ..errors import ConfigError
from ..record import Record
from ._store import add_store_flag, store_target, table_console

HELP = "show alerts in a store (exit 1 while alerts are firing), or test rules on stored records"
_SEV_STYLE = {"emerg": "bold red", "alert": "bold red", "crit": "bold red", "error": "red",
              "warning": "yellow", "notice": "cyan", "info": "green", "debug": "dim"}
_COLUMNS = ["state", "severity", "rule", "subject", "count", "first_seen", "last_seen",
            "summary"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "alerts", help=HELP, description=HELP + ". Each alert is shown in its latest state.",
        epilog="examples:\n"
        "  bustap alerts                       # firing alerts; exit 1 if any (cron, CI)\n"
        "  bustap alerts --state all --since 7d --rule auth_failure_burst\n"
        "  bustap alerts --follow              # notifications as they are stored\n"
        "  bustap alerts --test rules.toml --since 7d   # what rules.toml would have raised",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_flag(p)
    p.add_argument("--state", choices=["firing", "resolved", "all"], default="firing",
                   help="which alerts (default firing)")
    p.add_argument("--rule", action="append", metavar="ID", help="only this rule (repeatable)")
    p.add_argument("--since", metavar="TIME", help="alerts notified since: 30m, 2h, 7d, ISO 8601")
    p.add_argument("-f", "--follow", action="store_true",
                   help="then print every new alert notification as it is stored")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--test", metavar="RULES",
                   help="run the rules file (and the built-in detectors) over the stored "
                   "records of --since and show what they would have raised; writes nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..store.backend import open_store
    from ..store.query import Filters
    from ..store.search import latest_alerts, search
    from ..store.timeparse import parse_time

    since = parse_time(args.since, what="--since") if args.since else None
    if args.test:
        if args.follow:
            raise ConfigError("--test and --follow do not go together", value="--follow")
        return _test(args, since)
    filters = Filters(since=since, event_types=["alert"])
    if args.rule:
        filters.where = " or ".join(f"rule = '{_quote(r)}'" for r in args.rule)
    with open_store(store_target(args)) as store:
        notes = search(store, filters) if store.has_table() else []
    alerts = latest_alerts(notes)
    shown = [a for a in alerts if args.state == "all" or a.get("state") == args.state]
    _print(shown, args.format)
    firing = any(a.get("state") == "firing" for a in alerts)
    if args.follow:
        from ..store.schema import to_ts
        from ..store.search import follow

        start = to_ts(notes[-1]["timestamp"]) if notes else None

        def emit(records: list[Record]) -> None:
            _print(records, args.format, header=False)

        with contextlib.suppress(KeyboardInterrupt):
            follow(lambda: open_store(store_target(args)), filters, emit, start=start,
                   shown=notes)
    return 1 if firing else 0


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _test(args: argparse.Namespace, since: Any) -> int:
    from ..detect import Engine, load_rules
    from ..store.backend import open_store
    from ..store.query import Filters
    from ..store.search import iterate, latest_alerts

    settings = load_rules(args.test)
    engine = Engine(settings, event_time=True)  # no state file: nothing is written
    raised: list[Record] = []
    records = 0
    started = time.monotonic()
    with open_store(store_target(args)) as store:
        if store.has_table():
            for chunk in iterate(store, Filters(since=since)):
                records += len(chunk)
                raised += engine.process([r for r in chunk if r.get("event_type") != "alert"])
    raised += engine.tick()
    # what is still firing, with everything it counted since its last notification
    raised += engine.firing_now()
    for rec in raised:
        rec.setdefault("timestamp", rec.get("last_seen"))
    alerts = latest_alerts(raised)
    if args.rule:
        alerts = [a for a in alerts if a.get("rule") in args.rule]
    if args.state != "all":
        alerts = [a for a in alerts if a.get("state") == args.state]
    _print(alerts, args.format)
    if args.format == "table":
        print(f"bustap: {len(alerts)} alerts from {records} records in "
              f"{time.monotonic() - started:.1f}s (rules: {args.test}; nothing written)",
              file=sys.stderr)
    return 0


def _print(alerts: list[Record], fmt: str, *, header: bool = True) -> None:
    if fmt == "json":
        from ..record import dumps

        sys.stdout.buffer.write(b"".join(dumps(a) for a in alerts))
        sys.stdout.flush()
        return
    if not alerts:
        if header:
            print("no alerts", file=sys.stderr)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_header=header)
    for name in _COLUMNS:
        table.add_column(name.replace("_", " "), justify="right" if name == "count" else "left",
                         overflow="fold", no_wrap=name in ("first_seen", "last_seen"))
    for a in alerts:
        sev = str(a.get("severity") or "")
        state = str(a.get("state") or "")
        table.add_row(f"[{'bold red' if state == 'firing' else 'green'}]{state}[/]",
                      f"[{_SEV_STYLE.get(sev, '')}]{sev}[/]", str(a.get("rule")),
                      str(a.get("subject")), str(a.get("count")),
                      str(a.get("first_seen", ""))[:19].replace("T", " "),
                      str(a.get("last_seen", ""))[:19].replace("T", " "), str(a.get("summary")))
    with table_console(styles=True) as console:
        console.print(table)
