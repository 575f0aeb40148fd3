"""The ``bustap`` command. Subcommands live in :mod:`bustap.commands`, one
module each: they parse flags and call the library, nothing more."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from . import __version__
from .errors import BustapError
from .tuning import tune_gc, tune_malloc

EPILOG = """\
Sources are URLs: mqtt://[user[:pass]@]host[:1883], mqtts://host[:8883], nats://host[:4222],
tls://host:4222, file:///var/log/mosquitto/mosquitto.log?format=mosquitto, ...
Exit codes: 0 ok, 1 findings/alerts, 2 usage, configuration or connection error.
"""


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: options and positionals in any order, so that
    ``capture URL1 --tls-ca F URL2`` reads like ``capture URL1 URL2 --tls-ca F``
    (plain argparse stops the URLs at the first option and refuses URL2)."""

    _plain = False

    def parse_known_args(  # type: ignore[override]  # one signature for the overloads
            self, args: Sequence[str] | None = None,
            namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        if self._plain or any(a.nargs in (argparse.PARSER, argparse.REMAINDER)
                              for a in self._get_positional_actions()):
            # a parser of sub-subcommands (``policy explain``) passes the rest on
            return super().parse_known_args(args, namespace)
        # parse_known_intermixed_args calls parse_known_args itself: plain then
        self._plain = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._plain = False


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(
        prog="bustap", description="Tap MQTT and NATS buses and broker logs: capture, decode, "
        "store, query, chart, alert and audit.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bustap {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("BUSTAP_LOG_LEVEL", "warning"),
                        choices=["debug", "info", "warning", "error"],
                        help="level of bustap's own diagnostics on stderr (default: warning)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=CommandParser)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_malloc()
    tune_gc()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="bustap: %(levelname)s: %(message)s")
    try:
        code = int(args.func(args) or 0)
    except BustapError as exc:
        if _reader_went_away(exc):
            return 0
        print(f"bustap: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        _quiet_stdout()
        code = 0
    sys.stdout.flush() if not sys.stdout.closed else None
    return code


def _reader_went_away(exc: BustapError) -> bool:
    """``bustap capture ... | head`` ends like ``mosquitto_sub | head``: quietly."""
    from .errors import SinkError

    if isinstance(exc, SinkError) and exc.sink == "stdout" and exc.reason == "broken pipe":
        _quiet_stdout()
        return True
    return False


def _quiet_stdout() -> None:
    # Python flushes stdout again at exit and would report the broken pipe.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
