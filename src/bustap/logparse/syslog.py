"""Syslog envelopes: RFC 3164 (BSD), RFC 5424, and what real senders write.

Used by the syslog source (one datagram or frame is one message) and by the
log parsers, which unwrap syslog-formatted lines found in files (rsyslog's
``/var/log/syslog``, Logentries-style forwarding as in seed 001).

Forms accepted, each with or without ``<PRI>``:
- RFC 3164: ``Mmm dd hh:mm:ss host tag[pid]: msg``
- Go's log/syslog (nats-server ``-r udp://``): ``<PRI>2006-01-02T15:04:05Z host tag[pid]: msg``
- RFC 5424: ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD...] MSG`` (``-`` for nil)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEVERITY_NAMES = ("emerg", "alert", "crit", "error", "warning", "notice", "info", "debug")
_MONTHS = frozenset(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                     "Nov", "Dec"))

# journalctl's short-precise adds microseconds, short-iso writes "+0000".
_RFC3164_TIME = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d+)?) ")
_ISO_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) ")
_TAG = re.compile(r"([^\s\[:]{1,64})(?:\[(\d+)\])?: ?")


@dataclass(slots=True)
class SyslogMessage:
    msg: str
    facility: int | None = None
    severity: str | None = None
    time: str | None = None
    host: str | None = None
    app: str | None = None
    pid: int | None = None
    msgid: str | None = None

    def fields(self) -> dict[str, object]:
        """The envelope as record fields (only those present)."""
        out: dict[str, object] = {}
        if self.severity is not None:
            out["severity"] = self.severity
        if self.facility is not None:
            out["syslog_facility"] = self.facility
        if self.time is not None:
            out["syslog_time"] = self.time
        if self.host is not None:
            out["host"] = self.host
        if self.app is not None:
            out["app"] = self.app
        return out


def looks_like_syslog(line: str) -> bool:
    """Cheap test: does ``line`` start with a syslog header?"""
    if not line:
        return False
    if line[0] == "<":
        return True
    return line[:3] in _MONTHS and _RFC3164_TIME.match(line) is not None


def parse_syslog(text: str) -> SyslogMessage | None:
    """Split a syslog message into its envelope and MSG; None when it is not one."""
    pos = 0
    facility = severity = None
    if text.startswith("<"):
        end = text.find(">", 1, 5)
        if end < 0 or not text[1:end].isdigit():
            return None
        pri = int(text[1:end])
        if pri > 191:
            return None
        facility, sev = divmod(pri, 8)
        severity = SEVERITY_NAMES[sev]
        pos = end + 1
        if text.startswith("1 ", pos):
            return _rfc5424(text, pos + 2, facility, severity)
    m = _RFC3164_TIME.match(text, pos) or _ISO_TIME.match(text, pos)
    if m is None:
        if pos == 0:
            return None
        # <PRI> and nothing else we know: the rest is the message.
        return SyslogMessage(text[pos:], facility, severity)
    time = m.group(0).rstrip()
    pos = m.end()
    host = None
    sp = text.find(" ", pos)
    # RFC 3164 puts HOSTNAME before TAG, but some senders leave it out: a
    # first word ending in ':' is the tag, not a host.
    if sp > pos and not text[pos:sp].endswith(":"):
        host = text[pos:sp]
        pos = sp + 1
    tag = _TAG.match(text, pos)
    app = pid = None
    if tag is not None:
        app = tag.group(1)
        pid = int(tag.group(2)) if tag.group(2) else None
        pos = tag.end()
    return SyslogMessage(text[pos:], facility, severity, time, host, app, pid)


def _rfc5424(text: str, pos: int, facility: int, severity: str) -> SyslogMessage | None:
    parts = text[pos:].split(" ", 5)
    if len(parts) < 5:
        return None
    time, host, app, procid, msgid = (None if p == "-" else p for p in parts[:5])
    rest = parts[5] if len(parts) > 5 else ""
    rest = _skip_structured_data(rest)
    if rest.startswith("\ufeff"):
        rest = rest[1:]
    pid = int(procid) if procid and procid.isdigit() else None
    return SyslogMessage(rest, facility, severity, time, host, app, pid, msgid)


def _skip_structured_data(rest: str) -> str:
    if rest.startswith("- "):
        return rest[2:]
    if rest == "-":
        return ""
    i = 0
    n = len(rest)
    while i < n and rest[i] == "[":
        # An SD-ELEMENT ends at the first ']' not escaped and not inside quotes.
        quoted = False
        i += 1
        while i < n:
            c = rest[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "]" and not quoted:
                i += 1
                break
            i += 1
    return rest[i:].removeprefix(" ")
