"""Flags shared by the subcommands that connect to brokers (capture, top, audit...)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..errors import ConfigError
from ..pipeline import Counters, Pipeline
from ..sources import SourceOptions

T = TypeVar("T")


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection (mosquitto_sub / nats CLI style)")
    g.add_argument("-u", "--username", help="user name (or user:pass@ in the URL)")
    g.add_argument("-P", "--password", help="password; prefer the BUSTAP_PASSWORD environment "
                   "variable, which other users cannot see in the process list")
    g.add_argument("--token", help="NATS token (or BUSTAP_TOKEN)")
    g.add_argument("--creds", metavar="FILE", help="NATS credentials file (JWT + nkey seed)")
    g.add_argument("--nkey", metavar="FILE", help="NATS nkey seed file")
    g.add_argument("--tls-ca", "--cafile", "--tlsca", dest="tls_ca", metavar="FILE",
                   help="CA certificate(s) to verify the broker with (turns TLS on)")
    g.add_argument("--tls-cert", "--cert", "--tlscert", dest="tls_cert", metavar="FILE",
                   help="client certificate (PEM) for brokers that require one")
    g.add_argument("--tls-key", "--key", "--tlskey", dest="tls_key", metavar="FILE",
                   help="private key of the client certificate")
    g.add_argument("--insecure", action="store_true",
                   help="TLS without verifying the broker's certificate or host name "
                   "(testing only)")
    g.add_argument("-i", "--id", dest="client_id", metavar="CLIENT_ID",
                   help="MQTT client id (default: bustap-<random>, or the --session name)")
    g.add_argument("-V", "--protocol-version", default="auto", metavar="VERSION",
                   help="MQTT protocol: 5, 311 or auto (5, falling back to 3.1.1)")
    g.add_argument("-k", "--keepalive", type=int, default=60, metavar="SECS",
                   help="MQTT keepalive in seconds (default 60)")
    g.add_argument("--connect-timeout", type=float, default=5.0, metavar="SECS",
                   help="give up connecting after this long (default 5)")
    g.add_argument("--no-reconnect", action="store_true",
                   help="exit when a broker connection is lost instead of reconnecting")


def source_options(args: argparse.Namespace) -> SourceOptions:
    qos = getattr(args, "qos", 0)
    if qos not in (0, 1, 2):
        raise ConfigError(f"--qos must be 0, 1 or 2, not {qos}", value=qos)
    if args.keepalive < 0 or args.keepalive > 65535:
        raise ConfigError(f"--keepalive must be 0..65535, not {args.keepalive}",
                          value=args.keepalive)
    return SourceOptions(
        filters=list(getattr(args, "topic", None) or []),
        exclude=list(getattr(args, "exclude", None) or []),
        qos=qos,
        username=args.username,
        password=args.password if args.password is not None
        else os.environ.get("BUSTAP_PASSWORD"),
        token=args.token or os.environ.get("BUSTAP_TOKEN"),
        creds=args.creds,
        nkey=args.nkey,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure=args.insecure,
        session=getattr(args, "session", None),
        client_id=args.client_id,
        queue=getattr(args, "queue", None),
        protocol_version=str(args.protocol_version),
        keepalive_secs=args.keepalive,
        connect_timeout_secs=args.connect_timeout,
        reconnect=not args.no_reconnect,
    )


async def run_pipeline(pipeline: Pipeline, *helpers: Coroutine[Any, Any, None],
                       reopen_on_hup: bool = False) -> Counters:
    """Run until done or SIGINT/SIGTERM (a graceful stop: what was received is
    written), with helper tasks (dump ticker, progress bar) cancelled at the end.
    ``reopen_on_hup``: SIGHUP reopens the files written (a service's logrotate;
    a capture in a terminal still ends when the terminal closes)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, pipeline.stop)
    if reopen_on_hup:
        loop.add_signal_handler(signal.SIGHUP, pipeline.reopen)
    tasks = [asyncio.create_task(h) for h in helpers]
    try:
        return await pipeline.run()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (faster sockets), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
