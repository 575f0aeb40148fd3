"""``bustap demo``: brokers, a simulated network, capture and a summary."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..decode import DecoderChain
from ..pipeline import Counters, Pipeline
from ..record import Writer
from ..render import pretty_formatter
from ..sinks import make_sink
from ..sinks.jsonl import StdoutSink
from ..sources import SourceOptions, make_source
from ._common import run_async, run_pipeline
from ._detect import add_detect_flags, make_detection

HELP = "run brokers and a simulated network (routers, BOSH agents, sensors, an attacker) and " \
       "capture it all"


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP + ". Starts its own Mosquitto and "
                       "nats-server on free loopback ports; nothing else is touched.")
    p.add_argument("--duration", type=float, default=30.0, metavar="SECS",
                   help="how long to run (default 30; 0 runs until Ctrl-C)")
    p.add_argument("-o", "--output", action="append", metavar="SINK",
                   help="where records go (default ./bustap.duckdb)")
    p.add_argument("--rate", type=float, default=1.0,
                   help="speed of the simulated network (default 1.0)")
    p.add_argument("--quiet", action="store_true", help="no live view, only the summary")
    add_detect_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outputs = args.output or [_default_store()]
    counters = run_async(_demo(args, outputs))
    print(f"\ncaptured {counters.received} messages and {counters.records} records into "
          f"{', '.join(outputs)}", file=sys.stderr)
    _after(outputs)
    return 0


def _default_store() -> str:
    from ..sinks import load_all

    return "bustap.duckdb" if "duckdb" in load_all() else "bustap-demo.jsonl"


async def _demo(args: argparse.Namespace, outputs: list[str]) -> Counters:
    from ..demo.network import PASSWORD, brokers, run_network

    with tempfile.TemporaryDirectory(prefix="bustap-demo-") as tmp, brokers(Path(tmp)) as b:
        opts = SourceOptions(reconnect=True)
        sources = [
            make_source(f"mqtt://router:{PASSWORD}@127.0.0.1:{b.mqtt_port}", opts),
            make_source(f"nats://127.0.0.1:{b.nats_port}", opts),
            make_source(f"file://{b.mosquitto_log}?format=mosquitto&from_start=true"
                        "&state=none&poll_secs=0.2", opts),
            make_source(f"nats-monitor://127.0.0.1:{b.nats_http_port}?interval_secs=5", opts),
        ]
        sinks = [make_sink(o) for o in outputs]
        if not args.quiet:
            out = make_sink("-")
            assert isinstance(out, StdoutSink)
            out.formatter = pretty_formatter(sys.stdout.isatty())
            sinks.append(out)
        # fresh brokers every time: nothing to remember from an earlier demo
        detector, alert_outputs = make_detection(args, [s.name for s in sources],
                                                 persist=False)
        pipeline = Pipeline(sources, sinks, writer=Writer("demo"), decoders=DecoderChain(),
                            timeout=args.duration or None, detector=detector,
                            alert_outputs=alert_outputs)
        return await run_pipeline(pipeline, run_network(b, args.rate))


def _after(outputs: list[str]) -> None:
    store = next((o for o in outputs if o.endswith(".duckdb") or o.startswith(
        ("duckdb:", "postgresql:"))), None)
    if store is None:
        return
    print("\nnext, try:\n"
          f"  bustap stats --store {store} --by device\n"
          f"  bustap query --store {store} --event SNMP_TRAP_LINK_DOWN --format table\n"
          f"  bustap stats --store {store} --by client --every 10s --plot demo.png",
          file=sys.stderr)
