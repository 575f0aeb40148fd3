from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fixtures.decode_samples import decode

from bustap.decode import DecoderChain
from bustap.decode.syslog import SyslogError, parse_syslog

# RFC 5424 section 6.5 examples and RFC 3164 section 5.4 examples
RFC5424_1 = ("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
             "\ufeff'su root' failed for lonvick on /dev/pts/8")
RFC5424_SD = ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
              '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
              '[examplePriority@32473 class="high"] An application event log entry...')
RFC3164 = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"
JUNOS = ("<28>Aug 28 09:30:51 vmx4 mib2d[4086]: SNMP_TRAP_LINK_DOWN: ifIndex 529, "
         "ifAdminStatus down(2), ifOperStatus down(2), ifName ge-0/0/1.0")


def test_rfc5424() -> None:
    rec = decode("logs/r1", RFC5424_1.encode())
    assert "decode_error" not in rec
    assert (rec["decoder"], rec["device"], rec["event"], rec["severity"]) == (
        "syslog", "mymachine.example.com", "ID47", "crit")
    f = rec["fields"]
    assert (f["facility"], f["app"], f["timestamp"]) == ("auth", "su", "2003-10-11T22:14:15.003Z")
    assert f["message"] == "'su root' failed for lonvick on /dev/pts/8"
    assert "procid" not in f
    assert f["summary"] == "su: 'su root' failed for lonvick on /dev/pts/8"
    assert rec["format"] == "text"


def test_rfc5424_structured_data() -> None:
    rec = decode("logs/r1", RFC5424_SD.encode())
    f = rec["fields"]
    assert rec["severity"] == "notice"
    assert f["facility"] == "local4"
    assert f["sd.exampleSDID@32473.iut"] == "3"
    assert f["sd.exampleSDID@32473.eventID"] == "1011"
    assert f["sd.examplePriority@32473.class"] == "high"
    assert f["message"] == "An application event log entry..."


def test_rfc5424_escapes_and_nil() -> None:
    p = parse_syslog('<13>1 - - - - - [a x="q\\"uote\\]d"]')
    assert p["sd"] == {"a": {"x": 'q"uote]d'}}
    assert p["message"] == ""
    assert "host" not in p


def test_rfc3164() -> None:
    rec = decode("logs/r1", RFC3164.encode())
    assert (rec["device"], rec["event"], rec["severity"]) == ("mymachine", "su", "crit")
    assert rec["fields"]["timestamp"] == "Oct 11 22:14:15"
    assert rec["fields"]["message"] == "'su root' failed for lonvick on /dev/pts/8"


def test_junos_style_bsd_line() -> None:
    rec = decode("routers/vmx4/syslog", JUNOS.encode())
    assert (rec["device"], rec["event"], rec["severity"]) == ("vmx4", "mib2d", "warning")
    assert rec["fields"]["procid"] == "4086"
    assert rec["fields"]["facility"] == "daemon"
    assert rec["fields"]["message"].startswith("SNMP_TRAP_LINK_DOWN")


@pytest.mark.parametrize(("line", "host", "app"), [
    ("<13>Oct  1 02:03:04 host1 cron[12]: run", "host1", "cron"),
    ("<13>Oct  1 02:03:04 kernel: oops", None, "kernel"),
    ("<13>2024-01-02T03:04:05Z host2 app: x", "host2", "app"),
    ("<13>just text", None, None),
])
def test_bsd_variants(line: str, host: str | None, app: str | None) -> None:
    p = parse_syslog(line)
    assert p.get("host") == host
    assert p.get("app") == app


@pytest.mark.parametrize(("line", "reason"), [
    ("<192>Oct 11 22:14:15 h a: m", "over 191"),
    ("<01>x", "bad PRI"),
    ("<x>y", "bad PRI"),
    ("<34>1 2003-10-11T22:14:15Z host", "incomplete"),
    ('<34>1 - h a p m [id k="v', "unterminated"),
    ("<34>1 - h a p m junk", "structured data"),
])
def test_bad_lines(line: str, reason: str) -> None:
    with pytest.raises(SyslogError, match=reason):
        parse_syslog(line)


def test_bad_line_on_the_bus_keeps_raw() -> None:
    chain = DecoderChain(rules=[{"filter": "logs/#", "decoder": "syslog"}])
    rec = decode("logs/a", b"<999>nope", chain=chain)
    assert rec["decode_error"].startswith("syslog: ")
    assert rec["payload"] == "<999>nope"
    rec = decode("logs/a", b"<13>ok\xff", chain=chain)
    assert "invalid UTF-8" in rec["decode_error"]
    assert rec["format"] == "binary"


def test_rule_forces_syslog_without_pri() -> None:
    chain = DecoderChain(rules=[{"filter": "logs/#", "decoder": "syslog"}])
    rec = decode("logs/a", b"Oct 11 22:14:15 gw sshd[1]: Accepted", chain=chain)
    assert (rec["decoder"], rec["device"], rec["event"]) == ("syslog", "gw", "sshd")
    assert "severity" not in rec


def test_not_sniffed() -> None:
    assert decode("t", b"<html>")["decoder"] == "text"
    assert decode("t", b"hello")["decoder"] == "text"


@given(st.text(max_size=200))
def test_parser_raises_only_syslog_error(line: str) -> None:
    with contextlib.suppress(SyslogError):
        parse_syslog(line, require_pri=False)
