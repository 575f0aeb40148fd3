"""The wording templates (logparse/_wording.py): placeholders, anchoring and
the order of the rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bustap.logparse import _wording
from bustap.logparse._wording import Wording, friendly_bytes, go_duration_secs
from bustap.logparse.mosquitto_wording import RULES as MOSQUITTO_RULES
from bustap.logparse.nats_wording import RAFT_RULES, RULES


def test_placeholders_convert() -> None:
    w = Wording([("Took {d:dur} for {:asset} ({n:n} msgs, {size:bytes}, {q:q}, {s:sq}, "
                  "{i:d}, {f:f})", "x")])
    got = w.match("Took 1m2.5s for '$G > S > C' (1,234 msgs, 1.50 GB, \"a\\\"b\", 'c', -3, "
                  "0.25).")
    assert got == {"event": "x", "d": "1m2.5s", "d_secs": 62.5, "account": "$G",
                   "stream": "S", "consumer": "C", "n": 1234, "size": "1.50 GB",
                   "size_bytes": int(1.5 * 1024 ** 3), "q": 'a"b', "s": "c", "i": -3,
                   "f": 0.25}


def test_anchoring_open_end_and_order() -> None:
    w = Wording([("Catchup for stream {:asset} stalled", "stalled"),
                 ("Catchup for stream {:asset}...", "other"), ("{x:word} alone", "wild")])
    assert w.match("Catchup for stream 'A > S' stalled")["event"] == "stalled"  # type: ignore[index]
    assert w.match("Catchup for stream 'A > S' stalled, again")["event"] == "other"  # type: ignore[index]
    assert w.match("Catchup for something else") is None
    assert w.match("word alone") == {"event": "wild", "x": "word"}
    assert w.match("") is None


def test_units() -> None:
    assert go_duration_secs("250ms") == 0.25 and go_duration_secs("1h2m") == 3720
    assert go_duration_secs("0") == 0.0 and go_duration_secs("soon") is None
    assert friendly_bytes("64.00 MB") == 64 * 1024 ** 2 and friendly_bytes("12 B") == 12
    assert friendly_bytes("lots") is None


def test_tables_compile_with_snake_case_events() -> None:
    for rules in (RULES, RAFT_RULES, MOSQUITTO_RULES):
        w = Wording(rules)
        assert all(e.islower() and " " not in e for e in w.events)
        assert all(_wording._PLACEHOLDER.sub("", r[0]).count("{") == 0 for r in rules)


TABLES = [Wording(rules) for rules in (RULES, RAFT_RULES, MOSQUITTO_RULES)]


@given(st.text(max_size=200))
def test_any_text_matches_or_not_without_error(text: str) -> None:
    for table in TABLES:
        got = table.match(text)
        assert got is None or isinstance(got["event"], str)
