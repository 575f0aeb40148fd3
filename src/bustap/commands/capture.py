"""``bustap capture URL...``: subscribe and write every message as a record."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ..config import MAX_CONNECTING, command_line_sources, max_connecting
from ..decode import DecoderChain
from ..errors import ConfigError
from ..pipeline import Counters, Pipeline
from ..record import Writer
from ..render import pretty_formatter, raw_formatter
from ..sinks import make_sink
from ..sinks.jsonl import StdoutSink
from ..topics import validate_mqtt_filter, validate_nats_subject
from ._common import add_connection_flags, run_async, run_pipeline, source_options
from ._detect import add_detect_flags, make_detection

HELP = "capture messages from MQTT/NATS brokers (and other sources) as records"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "capture", help=HELP, description=HELP + ". Several URLs merge into one ordered "
        "stream (one writer_id, one seq).",
        epilog="examples:\n"
        "  bustap capture mqtt://127.0.0.1:1883 -t '#' --pretty\n"
        "  bustap capture nats://127.0.0.1:4222 -t 'hm.agent.>' -o capture.jsonl\n"
        "  bustap capture mqtts://broker:8883 --tls-ca ca.pem -u alice -t 'sensors/#' "
        "--qos 1 --session tap1 -o bustap.duckdb",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("urls", nargs="*", metavar="URL",
                   help="sources: mqtt://, mqtts://, nats://, tls://, ... (filters may also "
                   "ride in the URL: mqtt://host?t=sensors/%%23; ranges name fleets: "
                   "'mqtt://rtr-{001..200}:1883')")
    fleet = p.add_argument_group("fleets of brokers")
    fleet.add_argument("--sources", metavar="FILE",
                       help="more sources, one URL a line with its own options "
                       "(URL key=value...), or [[source]] tables in a .toml file; the flags "
                       "are the shared defaults")
    fleet.add_argument("--max-connecting", type=int, default=MAX_CONNECTING, metavar="N",
                       help="connection attempts in flight at once across a fleet "
                       f"(default {MAX_CONNECTING})")
    fleet.add_argument("--keep-trying", action="store_true",
                       help="a broker down at start is reported and retried instead of "
                       "stopping capture (always so for ranges and --sources)")
    p.add_argument("-t", "--topic", action="append", metavar="FILTER",
                   help="MQTT filter or NATS subject to subscribe to (repeatable; default all: "
                   "'#' / '>'); each applies to the sources it is valid for")
    p.add_argument("-T", "--exclude", action="append", metavar="FILTER",
                   help="leave out topics/subjects matching this filter (repeatable)")
    p.add_argument("--queue", metavar="GROUP", help="NATS queue group to join")
    p.add_argument("-q", "--qos", type=int, default=0, choices=[0, 1, 2],
                   help="MQTT subscription QoS (default 0); QoS 1/2 are acknowledged only "
                   "after the record is written")
    p.add_argument("--session", metavar="NAME",
                   help="MQTT persistent session with this client id (clean session off): "
                   "the broker keeps messages while bustap is away")
    p.add_argument("-o", "--output", action="append", metavar="SINK",
                   help="where records go (repeatable): - (stdout, default), FILE.jsonl, "
                   "duckdb:///path.duckdb, postgresql://..., tcp://host:port, ...")
    p.add_argument("-C", "--count", type=int, metavar="N",
                   help="exit after N messages")
    p.add_argument("-W", "--timeout", type=float, metavar="SECS",
                   help="exit after SECS seconds")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--pretty", action="store_true",
                      help="human view on stdout: time, topic and payload (or device, event, "
                      "severity and summary for decoded messages)")
    view.add_argument("--jsonl", action="store_true",
                      help="JSON lines on stdout (the default)")
    view.add_argument("--raw", action="store_true",
                      help="payloads only, one per line, like mosquitto_sub without -v")
    p.add_argument("--decoders", metavar="NAMES",
                   help="comma-separated decoders to use (default: all)")
    p.add_argument("--name", metavar="NAME",
                   help="writer name: records carry writer_id bustap/NAME (default: pid)")
    p.add_argument("--dump-every", type=float, metavar="SECS",
                   help="every SECS seconds write a dump (dump_init, one dump record per "
                   "topic and per client, dump_close) to every output")
    p.add_argument("--retain", metavar="DURATION",
                   help="in DuckDB/PostgreSQL outputs, delete records older than this "
                   "(7d, 12h); same as ?retain= on the store URL")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="decode and encode in N worker processes (default 0: in this "
                   "one); pays when decoding is the bottleneck and a core is free")
    add_connection_flags(p)
    add_detect_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count <= 0:
        raise ConfigError(f"-C/--count must be positive, not {args.count}", value=args.count)
    if not 0 <= args.workers <= 64:
        raise ConfigError(f"--workers must be 0..64, not {args.workers}", value=args.workers)
    if args.timeout is not None and args.timeout <= 0:
        raise ConfigError(f"-W/--timeout must be positive, not {args.timeout}",
                          value=args.timeout)
    options = source_options(args)
    sources = command_line_sources(
        args.urls, options, sources_file=args.sources,
        max_connecting=max_connecting(args.max_connecting, "--max-connecting"),
        keep_trying=args.keep_trying)
    for pattern in options.filters:
        if not any(_usable(s, pattern) for s in sources):
            protocols = {s.protocol for s in sources}
            if protocols <= {"mqtt"}:
                validate_mqtt_filter(pattern)  # raises with the precise reason
            if protocols <= {"nats"}:
                validate_nats_subject(pattern)
            raise ConfigError(f"invalid filter {pattern!r}: not valid for any of the sources",
                              value=pattern)
    for s in sources:  # validate filters before connecting anything
        if hasattr(s, "filters"):
            s.filters()
        if hasattr(s, "subjects"):
            s.subjects()
    if args.dump_every is not None and args.dump_every <= 0:
        raise ConfigError(f"--dump-every must be positive, not {args.dump_every}",
                          value=args.dump_every)
    outputs = list(args.output or ["-"])
    if args.retain:
        outputs = [_with_retain(o, args.retain) for o in outputs]
    sinks = [make_sink(o) for o in outputs]
    for sink in sinks:
        if isinstance(sink, StdoutSink):
            if args.pretty:
                sink.formatter = pretty_formatter(sys.stdout.isatty())
            elif args.raw:
                sink.formatter = raw_formatter
    decoders = DecoderChain(args.decoders.split(",") if args.decoders else None)
    dump = None
    processors = []
    if args.dump_every:
        from ..dump import DumpState

        dump = DumpState()
        processors.append(dump)
    detector, alert_outputs = make_detection(args, [s.name for s in sources],
                                             inline=bool(args.pretty and "-" in outputs))
    pipeline = Pipeline(sources, sinks, writer=Writer(args.name), decoders=decoders,
                        processors=processors, count=args.count, timeout=args.timeout,
                        workers=args.workers, detector=detector, alert_outputs=alert_outputs)

    counters = run_async(_run(pipeline, dump, args.dump_every))
    if sys.stderr.isatty() and not args.count:
        _summary(counters, detector)
    return 0


async def _run(pipeline: Pipeline, dump: Any = None, every: float | None = None) -> Counters:
    if dump is None or not every:
        return await run_pipeline(pipeline)
    return await run_pipeline(pipeline, _dump_ticker(pipeline, dump, every))


async def _dump_ticker(pipeline: Pipeline, dump: Any, every: float) -> None:
    from ..dump import dump_records

    source = pipeline.sources[0].name if len(pipeline.sources) == 1 else "*"
    while True:
        await asyncio.sleep(every)
        # the snapshot is a copy taken between batches; building and writing the
        # records happens from the copy while capture goes on
        records = dump_records(dump.snapshot(), period=every, source=source)
        await pipeline.emit(records)


def _with_retain(target: str, retain: str) -> str:
    from ..sinks import normalize

    url = normalize(target)
    if url.startswith(("duckdb:", "postgresql:", "postgres:")) and "retain=" not in url:
        return url + ("&" if "?" in url else "?") + "retain=" + retain
    return target


def _usable(source: Any, pattern: str) -> bool:
    from ..topics import valid_for

    return valid_for(source.protocol, pattern)


def _summary(c: Counters, detector: Any = None) -> None:
    dropped = sum(c.dropped.values())
    alerts = ""
    if detector is not None:
        st = detector.stats()
        alerts = f"; alerts fired {st['fired']}, firing {st['firing']}"
    brokers = c.health.summary()
    if brokers["brokers"] > 1:
        ever = sum(h.connects > 0 for h in c.health.brokers.values())
        alerts += f"; brokers {ever} of {brokers['brokers']} reached"
    for name, sink in sorted(c.sinks.items()):  # a sink that was down on the way
        if sink.spooled:
            alerts += (f"; {name}: {sink.spooled} spooled, {sink.queue_depth} left for "
                       "the next start")
    print(f"bustap: {c.received} messages, {c.written} records written in "
          f"{c.as_dict()['elapsed_secs']}s; dropped {dropped}; decode errors {c.decode_errors}"
          f"{alerts}", file=sys.stderr)
