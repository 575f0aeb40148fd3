"""``bustap demo``: its own brokers, a simulated network with trouble on a
schedule, and the pipeline of ``bustap run`` on it (``--print-config``)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .. import config
from ..pipeline import Counters, Pipeline
from ..record import Writer
from ..render import pretty_formatter
from ..sinks import make_sink
from ..sinks.jsonl import StdoutSink
from ._common import run_async, run_pipeline
from ._detect import make_detection

HELP = "run brokers and a simulated network (routers, BOSH agents, sensors, an attacker) and " \
       "tap it all"
# the tap's passwords reach the config through the environment, never its text
_ENV = {"mqtt": "BUSTAP_DEMO_MQTT_PASSWORD", "nats": "BUSTAP_DEMO_NATS_PASSWORD"}


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP + ". Starts its own Mosquitto and "
                       "nats-server on free loopback ports; nothing else is touched.")
    p.add_argument("--duration", type=float, default=60.0, metavar="SECS",
                   help="how long to run (default 60; 0 runs until Ctrl-C)")
    p.add_argument("--store", metavar="STORE",
                   help="where records go (default ./bustap.duckdb)")
    p.add_argument("-o", "--output", action="append", metavar="SINK",
                   help="more sinks besides the store (FILE.jsonl, ...)")
    p.add_argument("--rate", type=float, default=1.0,
                   help="speed of the simulated network and its schedule of trouble "
                   "(default 1.0)")
    p.add_argument("--quiet", action="store_true", help="no live view, only the summary")
    p.add_argument("--serve", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="where the dashboard listens (default 127.0.0.1:8080, or a free "
                   "port when 8080 is taken)")
    p.add_argument("--no-browser", action="store_true",
                   help="do not open the dashboard in a browser")
    p.add_argument("--print-config", action="store_true",
                   help="print the `bustap run` config the demo runs, then exit")
    p.add_argument("--no-detect", action="store_true", help="no alerts")
    p.set_defaults(func=run)


def demo_config(b: Any, store: str, sinks: list[str], web: str) -> str:
    """The config of ``bustap run`` that taps the demo's brokers ``b``."""
    log = "&from_start=true&state=none&poll_secs=0.2"
    extra = "".join(f'[[sink]]\nurl = "{s}"\n' for s in sinks)
    return f'''\
# bustap demo --print-config: what the demo runs (bustap run FILE runs it too,
# with {_ENV["mqtt"]} and {_ENV["nats"]} set)
name = "demo"

[[source]]                       # the bus, over TLS, as a read-only user
url = "mqtts://127.0.0.1:{b.mqtts_port}"
username = "tap"
password_env = "{_ENV["mqtt"]}"
tls_ca = "{b.ca}"
client_id = "bustap-demo"

[[source]]
url = "nats://127.0.0.1:{b.nats_port}"
username = "tap"
password_env = "{_ENV["nats"]}"

[[source]]                       # who connected, failed, was denied: the brokers' logs
url = "file://{b.mosquitto_log}?format=mosquitto{log}"

[[source]]
url = "file://{b.nats_log}?format=nats{log}"

[[source]]                       # connections and rates from the monitoring port
url = "nats-monitor://127.0.0.1:{b.nats_http_port}?interval_secs=5"

[[sink]]
url = "{store}"
{extra}
[web]                            # the dashboard
bind = "{web}"

[detect]
learn_secs = 10                  # a short demo: learn what is normal in 10 s
resolve_secs = 30
throttle_secs = 60
admins = ["bustap*", "tap"]
plaintext_credentials = {{ tls_ports = [{b.mqtts_port}] }}
rate_anomaly = {{ bucket_secs = 1, warmup_buckets = 8 }}   # rates learned in 8 s

[[rule]]
id = "link_flap"
where = "decoder = 'junos-jet' and event = 'SNMP_TRAP_LINK_DOWN'"
group_by = ["device", "fields.interface-name"]
count = 3
within_secs = 10
summary = "{{device}} {{fields.interface-name}} went down 3 times in 10 s"
'''


def run(args: argparse.Namespace) -> int:

    store = args.store or _default_store()
    counters, alerts = run_async(_demo(args, store))
    if args.print_config:
        return 0
    _summary(counters, alerts, store)
    return 0


def _default_store() -> str:
    from ..sinks import load_all

    return "bustap.duckdb" if "duckdb" in load_all() else "bustap-demo.jsonl"


async def _demo(args: argparse.Namespace, store: str) -> tuple[Counters, dict[str, int]]:
    from ..demo.network import brokers, run_network

    with tempfile.TemporaryDirectory(prefix="bustap-demo-") as tmp, brokers(Path(tmp)) as b:
        text = demo_config(b, store, list(args.output or []), _bind(args.serve))
        if args.print_config:
            print(text, end="")
            return Counters(), {}
        os.environ[_ENV["mqtt"]] = b.creds["tap"]
        os.environ[_ENV["nats"]] = b.creds["tap"]
        cfg = config.parse(text, origin="demo config")
        sinks = list(cfg.sinks)
        if not args.quiet:
            out = make_sink("-")
            assert isinstance(out, StdoutSink)
            out.formatter = pretty_formatter(sys.stdout.isatty())
            sinks.append(out)
        # fresh brokers every time: nothing to remember from an earlier demo
        detector, alert_outputs = make_detection(args, [s.name for s in cfg.sources],
                                                 settings=cfg.detect, persist=False,
                                                 inline=not args.quiet)
        pipeline = Pipeline(cfg.sources, sinks, writer=Writer(cfg.name), decoders=cfg.decoders,
                            timeout=args.duration or None, detector=detector,
                            alert_outputs=alert_outputs)

        def say(text: str) -> None:
            print(f"bustap demo: trouble: {text}", file=sys.stderr, flush=True)

        helpers = [run_network(b, args.rate, say)]
        if cfg.web is not None:
            from ..web import pipeline_server

            helpers.append(pipeline_server(cfg.web, pipeline))
            host, port = cfg.web.address
            url = f"http://{host}:{port}/"
            print(f"bustap demo: dashboard on {url}", file=sys.stderr, flush=True)
            if not args.no_browser:
                _open_browser(url)
        counters = await run_pipeline(pipeline, *helpers)
        return counters, dict(detector.fired) if detector is not None else {}


def _bind(address: str) -> str:
    """``address``, or a free port on its host when that port is taken."""
    import socket

    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        try:
            s.bind((host or "127.0.0.1", int(port)))
        except (OSError, ValueError):
            s.bind((host or "127.0.0.1", 0))
        return f"{host or '127.0.0.1'}:{s.getsockname()[1]}"


def _open_browser(url: str) -> None:
    # only where someone can see it: a headless machine has no display, and a
    # browser started there would linger
    if sys.platform == "darwin" or os.environ.get("DISPLAY") or os.environ.get(
            "WAYLAND_DISPLAY"):
        import webbrowser

        webbrowser.open(url)


def _summary(c: Counters, fired: dict[str, int], store: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stderr, highlight=False,
                      width=None if sys.stderr.isatty() else 120)
    sources = Table(title="records per source", box=None, pad_edge=False)
    sources.add_column("source")
    sources.add_column("records", justify="right")
    for name, n in sorted(c.per_source.items()):
        sources.add_row(name.split("?")[0], f"{n:,}")
    console.print()
    console.print(sources)
    table = Table(title="alerts raised", box=None, pad_edge=False)
    table.add_column("rule")
    table.add_column("alerts", justify="right")
    for rule, n in sorted(fired.items()):
        table.add_row(rule, str(n))
    console.print(table)
    console.print(f"\n{c.received:,} messages and {c.records:,} records into {store}")
    if not (store.endswith(".duckdb") or store.startswith(("duckdb:", "postgresql:"))):
        return
    # plain lines, never wrapped: people copy them
    print("next, try:\n"
                  f"  bustap alerts --store {store} --state all\n"
                  f"  bustap query --store {store} --event SNMP_TRAP_LINK_DOWN\n"
                  f"  bustap query --store {store} --where \"fields.cpu.user > 20\"\n"
                  f"  bustap stats --store {store} --by device\n"
                  f"  bustap stats --store {store} --by client --metric publish\n"
                  f"  bustap stats --store {store} --by client --every 10s --plot demo.png\n"
                  f"  bustap serve --store {store}   # the dashboard, on the store\n"
                  "  bustap demo --print-config   # the config it ran: sources, rules",
                  file=sys.stderr)
