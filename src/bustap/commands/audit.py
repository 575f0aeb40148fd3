"""``bustap audit URL...``: posture scan of MQTT and NATS brokers; exit 1 when
a finding reaches ``--fail-on``."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

import orjson

from ..audit import (
    CATALOGUE,
    AuditSettings,
    Severity,
    TargetReport,
    audit,
    fails,
    parse_targets,
    to_json,
    to_sarif,
)
from ..audit.base import plural
from ..audit.findings import counts, sort_findings
from ..errors import ConfigError
from ._common import add_connection_flags, run_async, source_options

HELP = "active, non-destructive security scan of MQTT and NATS brokers"
_LEVELS = [str(s) for s in Severity]


def register(sub: Any) -> None:
    ids = ", ".join(CATALOGUE)
    p = sub.add_parser(
        "audit", help=HELP,
        description=HELP + ":\nTLS and certificates, anonymous access, wildcard reads, "
        "$SYS and monitoring exposure,\nsecrets in retained messages, JetStream, versions "
        "with advisories.\nPublishes nothing unless --write-test.",
        epilog="examples:\n"
        "  bustap audit mqtt://broker:1883 nats://bus:4222\n"
        "  bustap audit mqtts://broker:8883 --tls-ca ca.pem -u auditor --fail-on high\n"
        "  bustap audit 'nats://bus:4222?monitor=8222' --format sarif > audit.sarif\n\n"
        f"finding ids: {textwrap.fill(ids, 78, subsequent_indent='  ')}\n"
        "exit codes: 0 nothing at --fail-on or above, 1 findings, 2 usage or connection "
        "error",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("urls", nargs="+", metavar="URL",
                   help="brokers: mqtt://, mqtts://, nats://, tls:// (NATS: ?monitor=PORT "
                   "names the monitoring port)")
    p.add_argument("--fail-on", default="medium", choices=_LEVELS,
                   help="exit 1 when a finding is this severe or worse (default medium)")
    p.add_argument("--format", default="table", choices=["table", "json", "sarif"],
                   help="table (terminal), json, or sarif (SARIF 2.1.0 for CI code scanning)")
    p.add_argument("--listen-secs", type=float, default=5.0, metavar="N",
                   help="how long to listen on '#' / '>' for topics, retained messages and "
                   "secrets (default 5)")
    p.add_argument("--write-test", action="store_true",
                   help="also publish one test message to a bustap-audit topic, to learn "
                   "whether writing is allowed")
    p.add_argument("--monitor-port", type=int, default=8222, metavar="PORT",
                   help="NATS monitoring port to probe when the URL has no ?monitor= "
                   "(default 8222)")
    add_connection_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.listen_secs <= 3600:
        raise ConfigError(f"--listen-secs must be more than 0 and at most 3600, not "
                          f"{args.listen_secs:g}", value=args.listen_secs)
    if not 0 < args.monitor_port < 65536:
        raise ConfigError(f"--monitor-port must be 1..65535, not {args.monitor_port}",
                          value=args.monitor_port)
    urls = parse_targets(args.urls)
    options = source_options(args)
    settings = AuditSettings(listen_secs=args.listen_secs, write_test=args.write_test,
                             monitor_port=args.monitor_port,
                             timeout_secs=args.connect_timeout)
    reports = run_async(audit(urls, options, settings))
    fail_on = Severity.parse(args.fail_on)
    if args.format == "json":
        sys.stdout.write(orjson.dumps(to_json(reports, fail_on),
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.format == "sarif":
        sys.stdout.write(orjson.dumps(to_sarif(reports), option=orjson.OPT_INDENT_2).decode()
                         + "\n")
    else:
        print_table(reports, fail_on)
    for r in reports:
        if r.error:
            print(f"bustap: error: {r.target}: {r.error}", file=sys.stderr)
    if any(r.error for r in reports):
        return 2
    return 1 if fails(reports, fail_on) else 0


_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "cyan",
          Severity.INFO: "dim"}


def _describe(r: TargetReport) -> str:
    b = r.broker
    version, name = str(b.get("version") or ""), str(b.get("name") or "")
    label = version if name in version else f"{name} {version}"
    bits = [label.strip() or "version unknown"]
    if r.protocol == "mqtt" and b.get("protocol_version"):
        bits.append(f"MQTT {b['protocol_version']}")
    bits.append(str(b["tls_version"]) if b.get("tls_version") else "no TLS")
    if "topics" in b:
        bits.append(f"{plural(b['topics'], 'topic')}, {b.get('retained', 0)} retained")
    if "subjects" in b:
        bits.append(plural(b["subjects"], "subject"))
    if b.get("jetstream"):
        bits.append("JetStream")
    return " · ".join(bits)


def print_table(reports: list[TargetReport], fail_on: Severity) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    for r in reports:
        console.print()
        if r.error:
            console.print(f"[bold]{escape(r.target)}[/]  [bold red]not audited:[/] "
                          f"{escape(r.error)}")
        else:
            console.print(f"[bold]{escape(r.target)}[/]  [dim]{escape(_describe(r))}[/]")
        if not r.findings and not r.error:
            console.print("  [green]no findings[/]")
        elif r.findings:
            table = Table(show_edge=False, pad_edge=False, header_style="bold",
                          show_lines=True)
            table.add_column("severity", no_wrap=True)
            table.add_column("finding", no_wrap=True)
            table.add_column("evidence and fix")
            for f in sort_findings(r.findings):
                style = _STYLE[f.severity]
                where = "" if f.target == r.target else f"{f.target}: "
                table.add_row(f"[{style}]{f.severity}[/]", f"[{style}]{f.id}[/]",
                              f"{escape(where + f.evidence)}\n[dim]fix: {escape(f.fix)}[/]")
            console.print(table)
        for note in r.notes:
            console.print(f"  [dim]note: {escape(note)}[/]")
    c = counts(reports)
    total = sum(c.values())
    summary = ", ".join(f"[{_STYLE[Severity.parse(k)]}]{n} {k}[/]" for k, n in c.items() if n)
    down = sum(1 for r in reports if r.error)
    verdict = (f"[bold red]fails[/] --fail-on {fail_on}" if fails(reports, fail_on) else
               "[bold red]incomplete[/]" if down else f"[green]passes[/] --fail-on {fail_on}")
    console.print()
    console.print(plural(total, "finding") + (f" ({summary})" if summary else "")
                  + (f" · {down} of {plural(len(reports), 'target')} not audited"
                     if down else "")
                  + f" · {verdict}")
