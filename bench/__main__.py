"""``make bench`` / ``python -m bench``: every benchmark, one table each, with
ratios against the tools users have today measured in the same run.

    python -m bench                 # everything (several minutes)
    python -m bench --n 50000       # smaller runs
    python -m bench.capture --cases mqtt0 --n 200000   # one case
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from bench.report import print_table, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="messages per capture case")
    parser.add_argument("--store-n", type=int, default=1_000_000,
                        help="records for the store benchmark")
    parser.add_argument("--only", help="comma list of capture,alerts,decode,logparse,"
                        "store,detect,fleet")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    sections: dict[str, list[dict[str, Any]]] = {}
    plan: list[tuple[str, dict[str, Any]]] = [("capture", {"n": args.n}), ("alerts", {}),
                                              ("decode", {}), ("logparse", {}),
                                              ("store", {"n": args.store_n}), ("detect", {}),
                                              ("fleet", {})]
    for name, kwargs in plan:
        if only and name not in only:
            continue
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            continue
        rows = module.run(**kwargs)
        sections[name] = rows
        print_table(name, rows)
    path = save(sections)
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
