"""Corpora of log lines in the wordings of older and newer broker releases
(tests/data/logs/*.tsv, written from the brokers' sources) parse into the
named events, and every line gives one record that keeps the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bustap.logparse import detect_format, make_parser

DATA = Path(__file__).parent / "data" / "logs"


def _corpus(name: str) -> list[tuple[str, str]]:
    rows = []
    for raw in (DATA / name).read_text().splitlines():
        if not raw or raw.startswith("#"):
            continue
        event, _, line = raw.partition("\t")
        rows.append((event, line))
    return rows


@pytest.mark.parametrize(("fmt", "corpus"), [("nats", "nats-wordings.tsv"),
                                             ("mosquitto", "mosquitto-wordings.tsv")])
def test_corpus_parses_into_named_events(fmt: str, corpus: str) -> None:
    rows = _corpus(corpus)
    parser = make_parser(fmt)
    wrong = []
    for event, line in rows:
        recs = parser.feed(line)
        got = [r["event"] for r in recs]
        if got != [event]:
            wrong.append(f"{event} != {got}: {line}")
        assert all(r["line"] == line for r in recs)
    wrong += [f"held back: {r['line']}" for r in parser.flush()]
    assert not wrong, "\n".join(wrong)
    assert detect_format([line for _, line in rows]) == fmt


def test_each_nats_prefix_is_sniffed() -> None:
    rows = _corpus("nats-wordings.tsv")
    start = next(i for i, (_, line) in enumerate(rows) if line.startswith("[INF] Server"))
    for _, line in rows[start:]:  # the prefixes section, one line each
        assert detect_format([line]) == "nats", line
