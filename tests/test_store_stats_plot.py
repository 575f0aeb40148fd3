"""``stats --plot``: the time axis spans the data (a single bucket used to
sit on an axis from 2025 to 2029), and little data still reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from matplotlib.dates import num2date

from bustap.store.stats import StatsResult, plot

NAMES = ["bucket", "key", "records"]
T0 = datetime(2026, 12, 1, 12, 20, 30)


def result(rows: list[tuple[datetime, str, int]], every: int = 10) -> StatsResult:
    return StatsResult(NAMES, list(rows), "client", every)


def test_one_bucket_is_drawn_as_bars_under_its_time(tmp_path: Path) -> None:
    fig = plot(result([(T0, "sensor0", 60), (T0, "cid:7", 1)]), str(tmp_path / "a.png"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2026-12-01 12:20:30"]
    assert len(ax.patches) == 2  # one bar per client
    assert ax.get_ylim()[0] == 0
    assert (tmp_path / "a.png").stat().st_size > 0


def test_many_buckets_axis_spans_the_data_only(tmp_path: Path) -> None:
    rows = [(T0 + timedelta(seconds=10 * i), "sensor0", i) for i in range(30)]
    fig = plot(result(rows), str(tmp_path / "b.png"))
    lo, hi = (num2date(x).replace(tzinfo=None) for x in fig.axes[0].get_xlim())
    assert lo == T0
    assert hi == T0 + timedelta(seconds=300)


def test_no_data_says_so(tmp_path: Path) -> None:
    fig = plot(result([]), str(tmp_path / "c.png"))
    assert any(t.get_text() == "no data" for t in fig.axes[0].texts)
