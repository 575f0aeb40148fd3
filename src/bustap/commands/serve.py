"""``bustap serve``: the dashboard, its JSON API and /metrics over a store."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

from ._store import add_store_flag, store_target

HELP = "dashboard, JSON API (OpenAPI) and Prometheus /metrics over a store"


def register(sub: Any) -> None:
    from ..web import DEFAULT_BIND

    p = sub.add_parser(
        "serve", help=HELP, description=HELP + ": overview, topic tree with last values, "
        "timelines, broker events, alerts with their evidence, search; live updates.",
        epilog="examples:\n"
        "  bustap serve                                  # http://127.0.0.1:8080/\n"
        "  bustap serve --store postgresql://127.0.0.1/bustap\n"
        "  BUSTAP_WEB_TOKEN=s3cret bustap serve --bind 0.0.0.0:8080\n"
        "      then open http://HOST:8080/?token=s3cret once (the page keeps a cookie),\n"
        "      or send 'Authorization: Bearer s3cret' (API, /metrics)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_flag(p)
    p.add_argument("--bind", default=DEFAULT_BIND, metavar="HOST:PORT",
                   help=f"where to listen (default {DEFAULT_BIND}); any address beyond "
                   "loopback needs --token")
    p.add_argument("--token", metavar="TOKEN",
                   help="require this bearer token (prefer the BUSTAP_WEB_TOKEN environment "
                   "variable: other users cannot read it in the process list)")
    p.add_argument("--poll", type=float, default=1.0, metavar="SECS",
                   help="how often live updates look for new records (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..store.backend import open_store
    from ..web import check_bind, require_web, server
    from ._common import run_async

    require_web()
    from ..web.app import WebState

    token = args.token or os.environ.get("BUSTAP_WEB_TOKEN") or None
    host, port = check_bind(args.bind, token)
    if args.poll <= 0:
        raise ConfigError(f"--poll must be positive, not {args.poll}", value=args.poll)
    target = store_target(args)
    with open_store(target) as store:  # fail now, not on the first request
        name = store.name
    state = WebState(open_store=lambda: open_store(target), store_name=name, token=token,
                     poll_secs=args.poll)
    srv = server(state, host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"bustap: dashboard on http://{shown}:{port}/ for {name}"
          + (" (open it once with ?token=YOUR_TOKEN)" if token else "")
          + "; Ctrl-C stops", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        run_async(srv.serve())
    return 0
