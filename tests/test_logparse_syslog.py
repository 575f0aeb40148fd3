from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bustap.logparse.syslog import looks_like_syslog, parse_syslog


def test_rfc3164_and_go_and_5424() -> None:
    m = parse_syslog("<30>Oct 11 22:14:15 mymachine mosquitto[42]: New connection")
    assert m is not None
    assert (m.facility, m.severity, m.host, m.app, m.pid, m.msg) == (
        3, "info", "mymachine", "mosquitto", 42, "New connection")
    m = parse_syslog("Oct 11 22:14:15 mosquitto: hello")
    assert m is not None and m.host is None and m.app == "mosquitto" and m.msg == "hello"
    m = parse_syslog("<5>2026-11-22T02:12:36Z vm nats-server[8751]: Starting nats-server")
    assert m is not None and m.app == "nats-server" and m.msg == "Starting nats-server"
    m = parse_syslog('<165>1 2003-10-11T22:14:15.003Z host app 12 ID47 [ex@1 a="b\\]"][x@2] '
                     "\ufeffmsg here")
    assert m is not None
    assert (m.host, m.app, m.pid, m.msgid, m.msg, m.severity) == ("host", "app", 12, "ID47",
                                                                  "msg here", "notice")
    m = parse_syslog("<13>1 - - - - - -")
    assert m is not None and m.msg == "" and m.host is None
    assert parse_syslog("plain text") is None
    assert not looks_like_syslog("1700000000: x") and looks_like_syslog("<1>x")


@given(st.text(max_size=200))
def test_never_raises(text: str) -> None:
    parse_syslog(text)
    parse_syslog("<13>" + text)
    parse_syslog("<13>1 " + text)
