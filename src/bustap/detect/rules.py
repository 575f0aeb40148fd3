"""User rules (``[[rule]]``): a ``--where`` condition, a group, a severity,
a summary template, and optionally a window:

- none: every matching record is a hit;
- ``count`` + ``within_secs``: that many matches in that time, per group;
- ``absent_secs``: a group that matched before has not matched for that
  long (resolved when it matches again);
- ``new_value = "PATH"``: a value of PATH never seen before in the group
  (after ``learn_secs``; what was seen survives restarts).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from .. import where
from ..errors import ConfigError
from ..record import Record
from .base import Clear, Context, Detector, Finding, Hit, Keyed, Window, group_key, window_hit

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KEYS = {"id", "where", "group_by", "severity", "summary", "subject", "throttle_secs",
         "resolve_secs", "count", "within_secs", "absent_secs", "new_value", "enabled"}
# never put these in a summary, whatever a template asks for
_SECRET = re.compile(r"pass|secret|token|private|credential|api[_-]?key|\bkey\Z", re.I)
MAX_TEMPLATE = 500


@dataclass
class RuleSpec:
    id: str
    where: where.Node
    where_text: str
    group_by: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    group_names: list[str] = field(default_factory=list)
    severity: str = "warning"
    summary: str = ""
    subject: str = ""
    throttle_secs: float | None = None
    resolve_secs: float | None = None
    count: int = 0
    within_secs: float = 0.0
    absent_secs: float = 0.0
    new_value: tuple[str, tuple[str, ...]] | None = None
    enabled: bool = True


def _path(text: Any, where_: str) -> tuple[str, tuple[str, ...]]:
    """A path of the ``--where`` language (``device``, ``fields.job``)."""
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{where_}: expected a field path like 'device' or 'fields.job'",
                          value=text)
    return _parsed_path(text, where_)


@functools.lru_cache(maxsize=1024)
def _parsed_path(text: str, where_: str = "summary") -> tuple[str, tuple[str, ...]]:
    node = where.parse(f"{text} exists", what=where_)
    assert isinstance(node, where.Cond)
    return node.root, node.path


def _template(text: Any, where_: str) -> str:
    if not isinstance(text, str) or len(text) > MAX_TEMPLATE:
        raise ConfigError(f"{where_}: expected a string of at most {MAX_TEMPLATE} characters",
                          value=text)
    for name in _PLACEHOLDER.findall(text):
        _path(name, f"{where_} placeholder {{{name}}}")
    return text


def parse_rule(table: dict[str, Any], where_: str) -> RuleSpec:
    from .settings import _number, boolean, severity

    rid = table.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise ConfigError(f"{where_}: 'id' is required: letters, digits, _ . - (at most 64)",
                          value=rid)
    at = f"{where_.split(': ')[0]}: rule {rid!r}"
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{at}: unknown key {unknown[0]!r} (allowed: "
                          f"{', '.join(sorted(_KEYS))})", value=unknown[0])
    text = table.get("where")
    if not isinstance(text, str):
        raise ConfigError(f"{at}: 'where' is required (a --where condition)", value=text)
    spec = RuleSpec(rid, where.parse(text, what=f"{at}: where"), text)
    group_by = table.get("group_by", [])
    if isinstance(group_by, str):
        group_by = [group_by]
    if not isinstance(group_by, list):
        raise ConfigError(f"{at}: group_by: expected a list of field paths", value=group_by)
    for g in group_by:
        spec.group_by.append(_path(g, f"{at}: group_by"))
        spec.group_names.append(str(g))
    if "severity" in table:
        spec.severity = severity(table["severity"], f"{at}: severity")
    spec.summary = _template(table.get("summary", f"{rid}: {{topic}}"), f"{at}: summary")
    spec.subject = _template(table.get("subject", ""), f"{at}: subject")
    for key in ("throttle_secs", "resolve_secs"):
        if key in table:
            setattr(spec, key, _number(table[key], f"{at}: {key}"))
    if "enabled" in table:
        spec.enabled = boolean(table["enabled"], f"{at}: enabled")
    windows = [k for k in ("count", "absent_secs", "new_value") if k in table]
    if len(windows) > 1:
        raise ConfigError(f"{at}: {windows[0]} and {windows[1]} do not go together: "
                          "one window per rule", value=windows[1])
    if "within_secs" in table and "count" not in table:
        raise ConfigError(f"{at}: within_secs needs count", value="within_secs")
    if "count" in table:
        spec.count = _number(table["count"], f"{at}: count", integer=True)
        if spec.count < 1 or "within_secs" not in table:
            raise ConfigError(f"{at}: count needs to be >= 1, with within_secs", value="count")
        spec.within_secs = _number(table["within_secs"], f"{at}: within_secs")
    if "absent_secs" in table:
        spec.absent_secs = _number(table["absent_secs"], f"{at}: absent_secs")
        if spec.absent_secs <= 0:
            raise ConfigError(f"{at}: absent_secs must be > 0", value=spec.absent_secs)
    if "new_value" in table:
        spec.new_value = _path(table["new_value"], f"{at}: new_value")
    return spec


def render(template: str, rec: Record) -> str:
    """Fill ``{path}`` placeholders from the record; secrets stay out."""
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if _SECRET.search(name.rsplit(".", 1)[-1]):
            return "[redacted]"
        found, value = where.lookup(rec, *_parsed_path(name))
        if not found or value is None:
            return "-"
        text = value if isinstance(value, str) else where.as_text(value)
        return text[:200]
    return _PLACEHOLDER.sub(one, template)


class RuleDetector(Detector):
    events = None  # a rule may read any record

    def __init__(self, ctx: Context, spec: RuleSpec) -> None:
        super().__init__(ctx)
        self.spec = spec
        self.rule_id = spec.id
        self.level = spec.severity
        self.throttle_secs = spec.throttle_secs
        self.resolve_secs = spec.resolve_secs
        self.windows: Keyed[Window] = Keyed(ctx.max_keys)
        self.last: Keyed[tuple[float, dict[str, Any], str, str]] = Keyed(ctx.max_keys)
        self.seen: Keyed[bool] = Keyed(ctx.max_keys * 10)
        self._match = spec.where.match

    def feed(self, rec: Record, t: float) -> list[Finding]:
        if not self._match(rec):
            return []
        spec = self.spec
        group: dict[str, Any] = {}
        for name, (root, path) in zip(spec.group_names, spec.group_by, strict=True):
            _, value = where.lookup(rec, root, path)
            group[name] = value
        # the texts are rendered for a hit only (most matches of a window or of
        # new_value are none); window_hit makes the group's key itself
        if spec.count:
            hit = window_hit(self, self.windows, spec.count, spec.within_secs, rec, t, group,
                             lambda n: render(spec.summary, rec), self._subject(rec, group))
            return [hit] if hit is not None else []
        key = group_key(group)
        if spec.absent_secs:
            self.last.put(key, (t, group, self._subject(rec, group), render(spec.summary, rec)))
            return [Clear(key, t)] if self.ctx.firing(spec.id, key) else []
        if spec.new_value is not None:
            found, value = where.lookup(rec, *spec.new_value)
            if not found or value is None:
                return []
            vkey = f"{key}\x00{where.as_text(value)}"
            if vkey in self.seen:
                self.seen.move_to_end(vkey)
                return []
            self.seen.touch(vkey, lambda: True)
            if self.ctx.learning(t):
                return []
        return [self.hit(rec, t, group, render(spec.summary, rec),
                         subject=self._subject(rec, group), key=key)]

    def _subject(self, rec: Record, group: dict[str, Any]) -> str:
        spec = self.spec
        if spec.subject:
            return render(spec.subject, rec)
        return ",".join(str(v) for v in group.values()) if group \
            else str(rec.get("device") or rec.get("topic") or spec.id)

    def tick(self, now: float) -> list[Finding]:
        spec = self.spec
        if not spec.absent_secs:
            return []
        out: list[Finding] = []
        for key, (t, group, subject, summary) in self.last.items():
            if now - t >= spec.absent_secs and not self.ctx.firing(spec.id, key):
                out.append(self._absent(key, group, subject, summary, t, now))
        return out

    def _absent(self, key: str, group: dict[str, Any], subject: str, summary: str,
                last: float, now: float) -> Finding:
        text = f"{summary} (nothing for {int(now - last)}s)"
        return Hit(key, group, subject, text, [], now, since=last)

    def sticky_alerts(self) -> bool:
        return bool(self.spec.absent_secs)

    def state(self) -> dict[str, Any]:
        if self.spec.new_value is not None:
            return {"seen": list(self.seen)}
        if self.spec.absent_secs:
            return {"last": [[k, *v] for k, v in self.last.items()]}
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        for v in state.get("seen", []):
            if isinstance(v, str):
                self.seen.touch(v, lambda: True)
        for item in state.get("last", []):
            if isinstance(item, list) and len(item) == 5:
                k, t, group, subject, summary = item
                self.last[str(k)] = (float(t), dict(group), str(subject), str(summary))
