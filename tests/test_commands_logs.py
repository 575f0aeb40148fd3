"""``bustap logs`` on a big mixed log: every line comes out as a record and
the understood/unparsed table is printed on stderr at the end."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
from tests.conftest import run_bustap

DATA = Path(__file__).parent / "data" / "logs"


def _lines(corpus: str) -> list[str]:
    return [raw.partition("\t")[2] for raw in (DATA / corpus).read_text().splitlines()
            if raw and not raw.startswith("#")]


def test_summary_table_counts_understood_and_unparsed(tmp_path: Path) -> None:
    known = _lines("nats-wordings.tsv")
    junk = [f"[1] 2025/10/01 09:00:00.000000 [INF] a wording from the future {i}"
            for i in range(7)]
    lines = (known + junk) * 40
    log = tmp_path / "nats.log"
    log.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    res = run_bustap("logs", str(log), "-o", str(out))
    assert res.returncode == 0, res.stderr
    table = dict(re.findall(r"^  (\w+)\s+([\d,]+)", res.stderr, re.M))
    assert int(table["lines"].replace(",", "")) == len(lines)
    assert int(table["unparsed"].replace(",", "")) == 7 * 40
    assert int(table["understood"].replace(",", "")) == len(known) * 40
    assert "(nats)" in res.stderr and "%" in res.stderr
    recs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    events = [r for r in recs if r.get("kind") == "broker_event"]
    assert len(events) == len(lines)
    assert sum(r["event"] == "unparsed" for r in events) == 7 * 40
    assert all(r["line"] for r in events)
