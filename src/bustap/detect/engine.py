"""The alert lifecycle around the detectors.

One alert per rule and group while it fires: later hits raise ``count`` and
``last_seen``; it is re-notified (a new ``firing`` record with the count so
far) at most every ``throttle_secs``; it is ``resolved`` once its condition
has been clear for ``resolve_secs`` (no hits, or a detector's
:class:`~bustap.detect.base.Clear`). Firing alerts and what detectors
learned are saved in the state directory, so a restart neither re-fires
what is firing nor forgets what it learned (the "new term flood after a
restart" users of other engines complain about).

Time: live, every record of a batch is at the time the batch is processed
and :meth:`Engine.tick` runs on the wall clock. With ``event_time`` (broker
logs read from a file, ``alerts --test`` over a store), a record is at the
time it says (``log_time``, else ``timestamp``) and time only moves with
the records, so a file raises what the same lines would have raised live.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..record import EventType, Record, parse_timestamp
from .base import Clear, Context, Detector, Hit, Messages
from .rules import RuleDetector
from .settings import DetectSettings

log = logging.getLogger("bustap.detect")
SAVE_EVERY_SECS = 2.0


@dataclass
class Active:
    """A firing alert."""

    alert_id: str
    rule: str
    key: str
    group: dict[str, Any]
    subject: str
    severity: str
    summary: str
    source: str
    first_seen: float
    last_seen: float
    count: int
    evidence: list[int] = field(default_factory=list)
    notified_at: float = 0.0
    notified_count: int = 0
    cleared_at: float | None = None


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Engine:
    def __init__(self, settings: DetectSettings | None = None, *,
                 state_path: Path | None = None, event_time: bool = False) -> None:
        from . import detector_classes

        self.settings = settings = settings or DetectSettings()
        self.state_path = state_path
        self.event_time = event_time
        self.ctx = Context(learn_secs=settings.learn_secs, max_keys=settings.max_keys,
                           admins=tuple(settings.admins), started=0.0,
                           firing=self._firing)
        self.detectors: list[Detector] = []
        for det_id, cls in detector_classes().items():
            params = settings.detectors.get(det_id, {})
            if det_id in settings.disable or params.get("enabled") is False:
                continue
            self.detectors.append(cls(self.ctx, **params))
        for spec in settings.rules:
            if spec.enabled:
                self.detectors.append(RuleDetector(self.ctx, spec))
        self.by_id = {d.rule_id: d for d in self.detectors}
        # dispatch on the broker event: most records (messages) meet no detector
        self._every = [d for d in self.detectors if d.events is None]
        # detectors of bus messages get them a batch at a time (feed_messages)
        self._messages = [d for d in self.detectors if d.messages]
        self._by_event: dict[str, list[Detector]] = {}
        for d in self.detectors:
            for ev in d.events or ():
                self._by_event.setdefault(ev, []).append(d)
        self.active: dict[tuple[str, str], Active] = {}
        self.now = 0.0
        self.errors: Counter[str] = Counter()
        self.fired: Counter[str] = Counter()  # alerts raised, per rule
        self.notifications = 0
        self._dirty = False
        self._saved_at = 0.0
        self._last_ts = ("", 0.0)
        self._load()

    # --- feeding ------------------------------------------------------------------

    def process(self, records: Iterable[Record]) -> list[Record]:
        """Alert records (unstamped) raised by a batch of stamped records."""
        out: list[Record] = []
        wall = time.time()
        by_event = self._by_event
        every = self._every
        msg_dets = self._messages
        msgs = Messages()
        for rec in records:
            if rec.get("kind") == "message":
                dets: Iterable[Detector] = ()
                if msg_dets:
                    if not self.event_time:
                        msgs.append(rec)
                    else:
                        self._feed_messages(Messages([rec]), self._time(rec), out)
                if not every:
                    continue
            else:
                et = rec.get("event_type")
                if et == "alert":
                    continue  # alerts do not feed alerts
                dets = by_event.get(str(rec.get("event") or et), ())
                if not dets and not every:
                    continue
            if not self.event_time:
                t = wall
            elif rec.get("event_type") in ("log_init", "log_close"):
                t = self.now or wall  # stamped when read, not when it happened
            else:
                t = self._time(rec)
                self.now = max(self.now, t)
            if not self.ctx.started and (not self.event_time or t == self.now):
                self.ctx.started = t
            for det in (*dets, *every):
                try:
                    findings = det.feed(rec, t)
                    for f in findings:
                        self._apply(det, f, out)
                except Exception as exc:  # a detector bug must not stop capture
                    self._error(det, exc)
        if msgs:
            self._feed_messages(msgs, wall, out)
        if not self.event_time:
            self.now = max(self.now, wall)
        return out

    def _feed_messages(self, msgs: Messages, t: float, out: list[Record]) -> None:
        if self.event_time:
            self.now = max(self.now, t)
        if not self.ctx.started:
            self.ctx.started = t
        for det in self._messages:
            try:
                for f in det.feed_messages(msgs, t):
                    self._apply(det, f, out)
            except Exception as exc:
                self._error(det, exc)

    def tick(self, now: float | None = None) -> list[Record]:
        """Time-driven work: absent data, re-notifications, resolutions."""
        if now is None:
            now = self.now if self.event_time else time.time()
        self.now = max(self.now, now)
        now = self.now
        out: list[Record] = []
        for d in self.detectors:
            try:
                for f in d.tick(now):
                    self._apply(d, f, out)
            except Exception as exc:
                self._error(d, exc)
        for akey, a in list(self.active.items()):
            det = self.by_id.get(a.rule)
            resolve = self._resolve_secs(det)
            clear_since = a.cleared_at if det is not None and det.sticky_alerts() \
                else a.last_seen
            if det is None or (clear_since is not None and now - clear_since >= resolve):
                del self.active[akey]
                out.append(self._record(a, "resolved"))
                self._dirty = True
            elif a.count > a.notified_count and now - a.notified_at >= self._throttle_secs(det):
                out.append(self._notify(a, now))
        if self._dirty and now - self._saved_at >= SAVE_EVERY_SECS:
            self.save()
        return out

    def _apply(self, det: Detector, f: Hit | Clear, out: list[Record]) -> None:
        akey = (det.rule_id, f.key)
        a = self.active.get(akey)
        if isinstance(f, Clear):
            if a is not None and a.cleared_at is None:
                a.cleared_at = f.t
                self._dirty = True
            return
        limit = self.settings.evidence_max
        if a is None:
            digest = hashlib.sha1(f"{det.rule_id}\x00{f.key}\x00{f.t}".encode()).hexdigest()
            a = Active(digest[:16], det.rule_id, f.key, f.group, f.subject,
                       f.severity or det.level, f.summary, f.source,
                       f.t if f.since is None else f.since, f.t, f.count, f.seqs[:limit])
            self.active[akey] = a
            self.fired[det.rule_id] += 1
            self._dirty = True
            out.append(self._notify(a, f.t))
            return
        a.count += f.count
        a.last_seen = max(a.last_seen, f.t)
        a.summary = f.summary
        a.cleared_at = None
        if f.severity:
            a.severity = f.severity
        room = limit - len(a.evidence)
        if room > 0:
            a.evidence.extend(f.seqs[:room])
        self._dirty = True
        if f.t - a.notified_at >= self._throttle_secs(det):
            out.append(self._notify(a, f.t))

    def _notify(self, a: Active, t: float) -> Record:
        a.notified_at = t
        a.notified_count = a.count
        self.notifications += 1
        return self._record(a, "firing")

    def _record(self, a: Active, state: str) -> Record:
        return {"event_type": EventType.ALERT.value, "source": a.source, "rule": a.rule,
                "severity": a.severity, "summary": a.summary, "subject": a.subject,
                "group": a.group, "evidence": list(a.evidence), "count": a.count,
                "first_seen": iso(a.first_seen), "last_seen": iso(a.last_seen),
                "state": state, "alert_id": a.alert_id}

    def firing_now(self) -> list[Record]:
        """The firing alerts as they stand (counts since the last notification
        included), as alert records."""
        return [self._record(a, "firing") for a in self.active.values()]

    def _firing(self, rule: str, key: str) -> bool:
        return (rule, key) in self.active

    def _throttle_secs(self, det: Detector | None) -> float:
        v = det.throttle_secs if det is not None else None
        return self.settings.throttle_secs if v is None else v

    def _resolve_secs(self, det: Detector | None) -> float:
        v = det.resolve_secs if det is not None else None
        return self.settings.resolve_secs if v is None else v

    def _time(self, rec: Record) -> float:
        text = rec.get("log_time") or rec.get("timestamp")
        if not isinstance(text, str):
            return self.now or time.time()
        last, value = self._last_ts
        if text == last:
            return value
        try:
            dt = parse_timestamp(text)
        except ValueError:
            return self.now or time.time()
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)  # nats-server writes UTC-less local times
        value = dt.timestamp()
        self._last_ts = (text, value)
        return value

    def _error(self, det: Detector, exc: Exception) -> None:
        self.errors[det.rule_id] += 1
        if self.errors[det.rule_id] == 1:
            log.warning("detector %s failed (%s: %s); it keeps running, errors are counted",
                        det.rule_id, type(exc).__name__, exc)

    # --- introspection --------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        evicted = {d.rule_id: n for d in self.detectors
                   if (n := sum(k.evicted for k in d.keyed()))}
        return {"detectors": len(self.detectors), "firing": len(self.active),
                "fired": sum(self.fired.values()), "fired_by_rule": dict(self.fired),
                "notifications": self.notifications,
                "errors": dict(self.errors), "state_evicted": evicted}

    # --- state across restarts --------------------------------------------------------

    def save(self) -> None:
        self._saved_at = self.now
        self._dirty = False
        if self.state_path is None:
            return
        data = {"version": 1, "started": self.ctx.started,
                "active": [asdict(a) for a in self.active.values()],
                "detectors": {d.rule_id: s for d in self.detectors if (s := d.state())}}
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(orjson.dumps(data))
            os.replace(tmp, self.state_path)
        except OSError as exc:
            self.errors["state"] += 1
            log.warning("cannot save alert state to %s: %s", self.state_path, exc)

    def _load(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            data = orjson.loads(self.state_path.read_bytes())
            self.ctx.started = float(data.get("started") or 0.0)
            for item in data.get("active", []):
                a = Active(**item)
                if a.rule in self.by_id:
                    self.active[(a.rule, a.key)] = a
            for det_id, state in (data.get("detectors") or {}).items():
                if det_id in self.by_id and isinstance(state, dict):
                    self.by_id[det_id].restore(state)
        except (OSError, ValueError, TypeError) as exc:
            # a damaged state file costs what was learned, never the capture
            self.errors["state"] += 1
            log.warning("ignoring unreadable alert state %s: %s", self.state_path, exc)
            self.active.clear()
            with contextlib.suppress(OSError):
                self.state_path.rename(self.state_path.with_suffix(".bad"))


def state_file(name: str) -> Path:
    """Where an engine called ``name`` keeps its state: ``$BUSTAP_STATE_DIR``
    or ``~/.local/state/bustap``, ``alerts-<name>.json``."""
    base = os.environ.get("BUSTAP_STATE_DIR") or os.path.join(
        os.path.expanduser("~"), ".local", "state", "bustap")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "default"
    return Path(base) / f"alerts-{safe}.json"
