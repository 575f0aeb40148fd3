"""Counts per group and per time bucket: ``bustap stats``.

Per group (topic, device, client, event or source) and, with ``every``, per
time bucket: records, bus messages and their bytes, and from broker logs the
new connections, PUBLISH and SUBSCRIBE lines and authentication failures
(broker_event records: ``client_connected``, ``publish_in``, ``subscribe``,
``auth_failed``). Only ``log`` records count unless event types are given:
dump and init records describe, they are not traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import ConfigError
from .backend import Store
from .query import Filters
from .schema import TABLE

GROUPS = {"topic": "topic", "device": "device", "client": "client_id", "event": "event",
          "source": "source", "kind": "kind", "severity": "severity"}

METRICS: dict[str, str] = {
    "records": "count(*)",
    "messages": "count(*) FILTER (WHERE kind = 'message')",
    "bytes": "coalesce(sum(size) FILTER (WHERE kind = 'message'), 0)",
    "connections": "count(*) FILTER (WHERE kind = 'broker_event' AND event = 'client_connected')",
    "publish": "count(*) FILTER (WHERE kind = 'broker_event' AND event = 'publish_in')",
    "subscribe": "count(*) FILTER (WHERE kind = 'broker_event' AND event = 'subscribe')",
    "auth_failures": "count(*) FILTER (WHERE kind = 'broker_event' AND event = 'auth_failed')",
}


@dataclass
class StatsResult:
    names: list[str]
    rows: list[tuple[Any, ...]]
    by: str
    every: int | None

    def series(self, metric: str) -> dict[str, list[tuple[datetime, float]]]:
        """Per group, the (bucket, value) points of one metric (for the plot)."""
        if self.every is None:
            raise ValueError("series need buckets (--every)")
        i_bucket, i_key = self.names.index("bucket"), self.names.index("key")
        i_val = self.names.index(metric)
        out: dict[str, list[tuple[datetime, float]]] = {}
        for row in self.rows:
            out.setdefault(str(row[i_key]), []).append((row[i_bucket], float(row[i_val] or 0)))
        return out


def stats(store: Store, filters: Filters, *, by: str, every: int | None = None,
          top: int | None = 10, order: str = "records") -> StatsResult:
    if by not in GROUPS:
        raise ConfigError(f"invalid --by {by!r}: one of {', '.join(GROUPS)}", value=by)
    if order not in METRICS:
        raise ConfigError(f"invalid metric {order!r}: one of {', '.join(METRICS)}", value=order)
    if every is not None and every < 1:
        raise ConfigError(f"invalid --every {every!r}: at least 1 second", value=every)
    if top is not None and top < 1:
        raise ConfigError(f"invalid --top {top!r}: at least 1", value=top)
    key = GROUPS[by]
    if by == "client":
        # a NATS connection is cid:N until its name is known: the name, as the
        # alerts and the dashboard say it (a literal path, no user input)
        name = "json_extract_string(extra, '$.name')" if store.dialect == "duckdb" \
            else "(extra ->> 'name')"
        key = f"COALESCE({name}, client_id)"
    where, params = filters.sql(store)
    if not filters.event_types:
        where += " AND event_type = 'log'"
    metrics = ", ".join(f"{sql} AS {name}" for name, sql in METRICS.items())
    base = f"SELECT * FROM {TABLE} WHERE {where} AND {key} IS NOT NULL"
    if every is None:
        sql = (f"SELECT {key} AS key, {metrics} FROM ({base}) b GROUP BY {key} "
               f"ORDER BY {order} DESC, key")
        if top is not None:
            sql += " LIMIT ?"
            params = [*params, top]
        names, rows = store.execute(sql, params)
        return StatsResult(names, rows, by, None)
    bucket = store.bucket(every)
    top_sql = ""
    top_params: list[Any] = []
    if top is not None:
        top_sql = (f" AND {key} IN (SELECT {key} FROM ({base}) t GROUP BY {key} "
                   f"ORDER BY {METRICS[order]} DESC, {key} LIMIT ?)")
        top_params = [*params, top]
    sql = (f"SELECT {bucket} AS bucket, {key} AS key, {metrics} FROM ({base}{top_sql}) b "
           f"GROUP BY 1, 2 ORDER BY 1, {order} DESC, 2")
    names, rows = store.execute(sql, [*params, *top_params])
    return StatsResult(names, rows, by, every)


def plot(result: StatsResult, path: str, *, metric: str = "records",
         title: str | None = None) -> Any:
    """Draw one line per group over time into a PNG; returns the matplotlib figure."""
    if metric not in METRICS:
        raise ConfigError(f"invalid --metric {metric!r}: one of {', '.join(METRICS)}",
                          value=metric)
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("--plot needs matplotlib: pip install 'bustap[plot]'",
                          value="matplotlib") from exc
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    series = result.series(metric)
    every = result.every or 60
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    buckets = sorted({p[0] for points in series.values() for p in points})
    if 0 < len(buckets) < 4:
        # A line needs points: a few buckets read better as bars side by side,
        # each group of bars under the time of its bucket.
        width = 0.8 / len(series)
        for i, (name, points) in enumerate(series.items()):
            values = dict(points)
            ax.bar([b + (i - (len(series) - 1) / 2) * width for b in range(len(buckets))],
                   [values.get(b, 0) for b in buckets], width=width, label=name or "(empty)")
        ax.set_xticks(range(len(buckets)),
                      [b.strftime("%Y-%m-%d %H:%M:%S") for b in buckets])
        ax.set_xlim(-0.6, len(buckets) - 0.4)
    else:
        for name, points in series.items():
            xs: Any = [p[0] for p in points]
            ax.plot(xs, [p[1] for p in points], marker="o" if len(points) < 30 else None,
                    markersize=3, label=name or "(empty)")
        ax.xaxis.set_major_formatter(
            mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))  # type: ignore[no-untyped-call]
        if buckets:
            # the axis spans the data (autoscale around few dates spans years)
            ax.set_xlim(buckets[0], buckets[-1] + timedelta(seconds=every))  # type: ignore[arg-type]
    ax.set_ylim(bottom=0)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.25 steps
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"{metric} per {_span(every)}")
    ax.set_title(title or f"{metric} per {_span(every)} by {result.by}")
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(title=result.by, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize="small")
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return fig


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n}{unit}" if n != 1 else {"d": "day", "h": "hour", "m": "minute"}[unit]
    return f"{seconds}s"
