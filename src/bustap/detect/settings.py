"""``[detect]`` and ``[[rule]]`` (TOML) -> :class:`DetectSettings`, validated
once at start: unknown keys, unknown detector names, bad types and bad rules
fail with the rule id or the key named (exit 2)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..record import SEVERITIES
from .rules import RuleSpec, parse_rule

SAMPLE = '''\
[detect]
# enabled = false                # no alerts at all
learn_secs = 600                 # behaviour detectors (new_client...) learn before they fire
disable = ["new_client"]         # built-in detectors to turn off
throttle_secs = 300              # a firing alert is re-notified at most this often
resolve_secs = 300               # resolved once its condition is clear this long
admins = ["bustap*", "admin"]    # users / client ids allowed '#', '>' and '$SYS/#'
outputs = ["console"]            # also https://hooks.example/x, mqtt://h?topic=alerts/{rule},
                                 # nats://h?subject=alerts.{rule}
auth_failure_burst = { count = 5, within_secs = 60 }
plaintext_credentials = { tls_ports = [8883, 8884] }
broker_version = { severity = "warning" }
device_silent = { periods = 4 }  # silent after 4 of its learned periods without a message
rate_anomaly = { min_rate = 100, bucket_secs = 10 }

[[rule]]
id = "disk_full"
where = "decoder = 'bosh-heartbeat' and fields.disk.persistent.percent > 90"
group_by = ["device"]
severity = "warning"
summary = "{device}: persistent disk {fields.disk.persistent.percent}%"
throttle_secs = 300
# windows: count = 5 + within_secs = 60 | absent_secs = 180 | new_value = "fields.x"
'''

COMMON_KEYS = {"severity", "throttle_secs", "resolve_secs", "enabled"}
_TOP_KEYS = {"enabled", "learn_secs", "disable", "throttle_secs", "resolve_secs", "admins",
             "outputs", "max_keys", "evidence_max"}


@dataclass
class DetectSettings:
    enabled: bool = True
    learn_secs: float = 600.0
    throttle_secs: float = 300.0
    resolve_secs: float = 300.0
    max_keys: int = 10_000
    evidence_max: int = 50
    disable: list[str] = field(default_factory=list)
    admins: list[str] = field(default_factory=lambda: ["bustap*"])
    outputs: list[str] = field(default_factory=lambda: ["console"])
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[RuleSpec] = field(default_factory=list)


def load_rules(path: str | Path) -> DetectSettings:
    """A rules file: ``[detect]`` and ``[[rule]]`` tables."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: {exc.strerror or exc}", value=str(p)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}", value=str(p)) from exc
    unknown = sorted(set(data) - {"detect", "rule"})
    if unknown:
        raise ConfigError(f"{p}: unknown key {unknown[0]!r} (a rules file has [detect] and "
                          "[[rule]])", value=unknown[0])
    return parse_detect(data, origin=str(p))


def parse_detect(data: dict[str, Any], *, origin: str = "config") -> DetectSettings:
    """The ``detect`` and ``rule`` keys of a parsed TOML document."""
    from . import detector_classes

    classes = detector_classes()
    out = DetectSettings()
    table = data.get("detect", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{origin}: [detect] must be a table", value="detect")
    where = f"{origin}: detect"
    for key, value in table.items():
        if key in classes:
            out.detectors[key] = _detector_params(classes[key].params, value,
                                                  f"{where}.{key}")
            continue
        if key not in _TOP_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r} (settings: "
                              f"{', '.join(sorted(_TOP_KEYS))}; detectors: "
                              f"{', '.join(sorted(classes))})", value=key)
        if key == "enabled":
            out.enabled = boolean(value, f"{where}.enabled")
        elif key in ("disable", "admins", "outputs"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}.{key}: expected a list of strings", value=key)
            setattr(out, key, list(value))
        else:
            setattr(out, key, _number(value, f"{where}.{key}", integer=key in (
                "max_keys", "evidence_max")))
    for name in out.disable:
        if name not in classes:
            raise ConfigError(f"{where}.disable: unknown detector {name!r} (known: "
                              f"{', '.join(sorted(classes))})", value=name)
    rules = data.get("rule", [])
    if isinstance(rules, dict):
        rules = [rules]
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ConfigError(f"{origin}: rule must be [[rule]] tables", value="rule")
    seen: set[str] = set(classes)
    for i, rule in enumerate(rules):
        spec = parse_rule(rule, f"{origin}: rule[{i}]")
        if spec.id in seen:
            raise ConfigError(f"{origin}: rule {spec.id!r}: id already used (by a built-in "
                              "detector or another rule)", value=spec.id)
        seen.add(spec.id)
        out.rules.append(spec)
    return out


def _detector_params(defaults: dict[str, Any], value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table like {{ count = 5 }}", value=where)
    params: dict[str, Any] = {}
    for key, v in value.items():
        if key in COMMON_KEYS:
            if key == "severity":
                params[key] = severity(v, f"{where}.severity")
            elif key == "enabled":
                params[key] = boolean(v, f"{where}.enabled")
            else:
                params[key] = _number(v, f"{where}.{key}")
            continue
        if key not in defaults:
            allowed = sorted([*defaults, *COMMON_KEYS])
            raise ConfigError(f"{where}: unknown key {key!r} (allowed: {', '.join(allowed)})",
                              value=key)
        default = defaults[key]
        if isinstance(default, list):
            if not isinstance(v, list) or (
                    default and not all(isinstance(x, type(default[0])) for x in v)):
                raise ConfigError(f"{where}.{key}: expected a list like {default!r}", value=v)
            params[key] = list(v)
        elif isinstance(default, bool):
            params[key] = boolean(v, f"{where}.{key}")
        elif isinstance(default, int | float):
            params[key] = _number(v, f"{where}.{key}", integer=isinstance(default, int))
        else:
            if not isinstance(v, str):
                raise ConfigError(f"{where}.{key}: expected a string", value=v)
            params[key] = v
    return params


def _number(value: Any, where: str, *, integer: bool = False) -> Any:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or value < 0:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{where}: expected {kind} >= 0, not {value!r}", value=value)
    return value


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false", value=value)
    return value


def severity(value: Any, where: str) -> str:
    if not isinstance(value, str) or value not in SEVERITIES:
        raise ConfigError(f"{where}: expected one of {', '.join(SEVERITIES)}, not {value!r}",
                          value=value)
    return value
