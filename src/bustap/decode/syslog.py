"""A syslog line carried as a payload: RFC 5424 or RFC 3164 (BSD).

RFC 5424: ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD-ID k="v"...] MSG``.
RFC 3164: ``<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`` (also with an ISO
timestamp, as rsyslog writes it, and without a host). Parsed with splits, no
regexes. ``device`` is the host, ``event`` the MSGID (5424) or the app/tag,
``severity`` and ``facility`` come from PRI.

:func:`parse_syslog` is the pure parser; the syslog source can reuse it.
"""

from __future__ import annotations

from typing import Any

from ..errors import DecodeError
from ..message import Message
from ..record import SEVERITIES, Record
from . import register_decoder
from ._util import clip
from .base import Decoder

NAME = "syslog"
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
              "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
              "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")
_MONTHS = frozenset(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                     "Nov", "Dec"))
MAX_LINE = 64 * 1024


class SyslogError(ValueError):
    pass


def parse_syslog(line: str, *, require_pri: bool = True) -> dict[str, Any]:
    """Parse one syslog line into a flat dict: pri, facility, severity,
    version, timestamp, host, app, procid, msgid, sd (dict), message.
    Raises SyslogError with the reason."""
    line = line.rstrip("\r\n\x00")
    out: dict[str, Any] = {}
    rest = line
    if line.startswith("<"):
        end = line.find(">", 1, 5)
        digits = line[1:end] if end > 0 else ""
        if not digits or not digits.isascii() or not digits.isdigit() or (
                len(digits) > 1 and digits[0] == "0"):
            raise SyslogError("bad PRI: expected <0..191>")
        pri = int(digits)
        if pri > 191:
            raise SyslogError(f"PRI {pri} is over 191")
        out["pri"] = pri
        out["facility"] = FACILITIES[pri >> 3]
        out["severity"] = SEVERITIES[pri & 7]
        rest = line[end + 1:]
    elif require_pri:
        raise SyslogError("no <PRI> at the start")
    if rest[:2] == "1 ":
        out["version"] = 1
        _parse_5424(rest[2:], out)
    else:
        _parse_3164(rest, out)
    return out


def _nil(v: str) -> str | None:
    return None if v == "-" else v


def _parse_5424(rest: str, out: dict[str, Any]) -> None:
    parts = rest.split(" ", 5)
    if len(parts) < 5:
        raise SyslogError("RFC 5424 header is incomplete")
    ts, host, app, procid, msgid = parts[:5]
    tail = parts[5] if len(parts) == 6 else ""
    for key, v in (("timestamp", ts), ("host", host), ("app", app), ("procid", procid),
                   ("msgid", msgid)):
        if _nil(v) is not None:
            out[key] = v
    if tail.startswith("-"):
        msg = tail[2:] if tail[1:2] == " " else tail[1:]
    elif tail.startswith("["):
        sd, pos = _parse_sd(tail)
        out["sd"] = sd
        msg = tail[pos + 1:] if tail[pos:pos + 1] == " " else tail[pos:]
    elif tail == "":
        msg = ""
    else:
        raise SyslogError("RFC 5424 structured data must be '-' or start with '['")
    if msg.startswith("\ufeff"):  # the BOM that marks a UTF-8 MSG
        msg = msg[1:]
    out["message"] = msg


def _parse_sd(text: str) -> tuple[dict[str, dict[str, str]], int]:
    """``[id k="v" k2="v\\"2"][id2]`` -> ({id: {k: v}}, position after)."""
    sd: dict[str, dict[str, str]] = {}
    i = 0
    n = len(text)
    while i < n and text[i] == "[":
        j = i + 1
        while j < n and text[j] not in " ]":
            j += 1
        sd_id = text[i + 1:j]
        if not sd_id:
            raise SyslogError("empty SD-ID")
        params: dict[str, str] = {}
        while j < n and text[j] == " ":
            j += 1
            eq = text.find("=", j)
            if eq < 0 or eq + 1 >= n or text[eq + 1] != '"':
                raise SyslogError(f"bad SD-PARAM in [{sd_id}]")
            name = text[j:eq]
            k = eq + 2
            buf: list[str] = []
            while k < n and text[k] != '"':
                if text[k] == "\\" and k + 1 < n and text[k + 1] in '"\\]':
                    k += 1
                buf.append(text[k])
                k += 1
            if k >= n:
                raise SyslogError(f"unterminated value in [{sd_id}]")
            params[name] = "".join(buf)
            j = k + 1
        if j >= n or text[j] != "]":
            raise SyslogError(f"unterminated [{sd_id}]")
        sd[sd_id] = params
        i = j + 1
    return sd, i


def _is_bsd_time(s: str) -> bool:
    # "Oct 11 22:14:15" / "Oct  1 22:14:15"
    return (len(s) >= 15 and s[:3] in _MONTHS and s[3] == " " and s[6] == " "
            and s[9] == ":" and s[12] == ":")


def _parse_3164(rest: str, out: dict[str, Any]) -> None:
    if _is_bsd_time(rest):
        out["timestamp"] = rest[:15]
        rest = rest[16:] if rest[15:16] == " " else rest[15:]
    else:
        first, sep, tail = rest.partition(" ")
        if first[:4].isdigit() and "T" in first and ":" in first:
            out["timestamp"] = first
            rest = tail
    first, sep, tail = rest.partition(" ")
    # A host follows a timestamp (RFC 3164 4.3.3: without one, all of it is
    # the message) and is a single token that is not the tag ("app:", "app[12]:").
    if "timestamp" in out and sep and first and not first.endswith(":") and "[" not in first:
        out["host"] = first
        rest = tail
    colon = rest.find(": ")
    if colon < 0 and rest.endswith(":"):
        colon = len(rest) - 1
    tag = rest[:colon] if 0 < colon <= 64 and " " not in rest[:colon] else ""
    if tag:
        bracket = tag.find("[")
        if bracket > 0 and tag.endswith("]"):
            out["app"] = tag[:bracket]
            out["procid"] = tag[bracket + 1:-1]
        else:
            out["app"] = tag
        rest = rest[colon + 2:]
    out["message"] = rest


@register_decoder(NAME)
class Syslog(Decoder):
    priority = 100
    sniff_on = "text"

    def sniff(self, payload: bytes, value: Any) -> bool:
        # "<" then 1..3 digits then ">": cheap enough for every text payload
        if len(payload) < 4 or payload[0] != 0x3C:
            return False
        end = payload.find(b">", 1, 5)
        return end > 1 and payload[1:end].isdigit()

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        if len(msg.payload) > MAX_LINE:
            raise DecodeError(NAME, f"line of {len(msg.payload)} bytes is over {MAX_LINE}")
        try:
            text = msg.payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(NAME, f"invalid UTF-8 at byte {exc.start}") from exc
        if "\n" in text.rstrip("\r\n"):
            raise DecodeError(NAME, "more than one line")
        try:
            parsed = parse_syslog(text, require_pri=False)
        except SyslogError as exc:
            raise DecodeError(NAME, str(exc)) from exc
        fields: dict[str, Any] = {}
        for key in ("facility", "pri", "timestamp", "app", "procid", "msgid"):
            if key in parsed:
                fields[key] = parsed[key]
        for sd_id, params in parsed.get("sd", {}).items():
            if not params:
                fields[f"sd.{sd_id}"] = True
            for k, v in params.items():
                fields[f"sd.{sd_id}.{k}"] = v
        message = parsed.get("message", "")
        fields["message"] = message
        app = parsed.get("app")
        fields["summary"] = clip(f"{app}: {message}" if app else message)
        if parsed.get("host"):
            rec["device"] = parsed["host"]
        event = parsed.get("msgid") or app
        if event:
            rec["event"] = event
        if "severity" in parsed:
            rec["severity"] = parsed["severity"]
        rec["fields"] = fields
