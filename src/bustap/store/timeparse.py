"""Durations (``90s``, ``5m``, ``1h``, ``2d``, ``1w``) and points in time
(a duration ago, ``now``, ``today``, ``yesterday``, ISO 8601) for
``--since``, ``--until``, ``--every`` and ``retain``. Times are naive UTC,
as the stores keep them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ..errors import ConfigError

_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "d": 86400, "day": 86400, "days": 86400,
          "w": 604800, "week": 604800, "weeks": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    m = _DURATION.match(text.lower())
    unit = m.group(2) or "s" if m else ""
    if not m or unit not in _UNITS:
        raise ConfigError(f"invalid {what} {text!r}: use a number and a unit, like 30s, 5m, "
                          "1h, 2d, 1w", value=text)
    seconds = float(m.group(1)) * _UNITS[unit]
    if seconds <= 0 or seconds > 100 * 365 * 86400:
        raise ConfigError(f"invalid {what} {text!r}: must be more than 0 and at most 100 years",
                          value=text)
    return timedelta(seconds=seconds)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_time(text: str, *, what: str = "time", now: datetime | None = None) -> datetime:
    """``1h`` (an hour ago), ``now``, ``today``, ``yesterday``, or ISO 8601
    (``2024-05-01``, ``2024-05-01T10:00``, with ``Z`` or an offset; naive means UTC)."""
    now = now or utcnow()
    word = text.strip().lower()
    if word == "now":
        return now
    if word == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if word == "yesterday":
        return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    if _DURATION.match(word) and not re.match(r"^\d{4}", word):
        return now - parse_duration(text, what=what)
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(f"invalid {what} {text!r}: use a duration ago (30m, 2d), now, today, "
                          "yesterday, or an ISO time (2024-05-01T10:00Z)", value=text) from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt
