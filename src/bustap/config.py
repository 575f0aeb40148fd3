"""The TOML configuration of ``bustap run``: sources, sinks and decode rules,
validated once at start (unknown keys refused, errors name the key and the
bad value, like Vector and Telegraf).

Secrets are best kept out of the file: every ``password``, ``token`` has a
``*_env`` twin naming an environment variable.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .decode import DecoderChain
from .detect import DetectSettings, parse_detect
from .detect.settings import SAMPLE as DETECT_SAMPLE
from .errors import ConfigError
from .sinks import Sink, make_sink
from .sources import Source, SourceOptions, make_source
from .web import SAMPLE as WEB_SAMPLE
from .web import WebSettings, parse_web

SAMPLE = '''\
# bustap run bustap.toml: a long-running tap. Every key is optional unless marked.
name = "tap1"                    # writer_id = "bustap/tap1"
workers = 0                      # decode in N worker processes (capture --workers)

[[source]]
url = "mqtt://broker.example:1883"        # required; mqtts:// for TLS
topics = ["/junos/events/#", "sensors/#"]
exclude = ["sensors/+/debug"]
qos = 1
session = "tap1"                 # persistent session: nothing lost while away
username = "bustap"
password_env = "BUSTAP_MQTT_PASSWORD"     # or password = "..." (not recommended)
tls_ca = "/etc/bustap/ca.pem"
keepalive_secs = 60

[[source]]
url = "tls://director.example:4222"
topics = ["hm.agent.>", "agent.>", "director.>"]
queue = "taps"
tls_cert = "/etc/bustap/nats-client.pem"
tls_key = "/etc/bustap/nats-client.key"
tls_ca = "/etc/bustap/nats-ca.pem"

[[source]]
url = "file:///var/log/mosquitto/mosquitto.log?format=mosquitto"

[[sink]]
url = "bustap.duckdb"            # required; also FILE.jsonl, postgresql://..., -

# Bus sinks: one message per record; {name} takes a record field ("_" when missing).
# [[sink]]                       # RabbitMQ: durable exchange, persistent, confirmed
# url = "amqp://bustap@rabbit.example/telemetry?exchange=bustap&routing_key=bustap.{kind}.{device}"
# password_env = "BUSTAP_AMQP_PASSWORD"   # the URL's password, from the environment
# [[sink]]                       # JetStream: acked, de-duplicated by Nats-Msg-Id
# url = "jetstream://nats.example:4222/BUSTAP?subject=bustap.{kind}.{device}&create=true"
# [[sink]]                       # core NATS
# url = "nats://nats.example:4222/?subject=bustap.{event_type}.{device}"
# [[sink]]                       # MQTT: QoS 1 acknowledged, the source's TLS options
# url = "mqtts://broker.example:8883/?topic=bustap/{kind}/{device}&qos=1&tls_ca=/etc/bustap/ca.pem"
# [[sink]]                       # Logstash json_lines
# url = "tcp://logstash.example:5044"

[[decode.rules]]
filter = "sensors/+/temperature"
decoder = "number"
device = "topic[1]"

# Alerts: the built-in security detectors run with their defaults; [detect]
# tunes them and [[rule]] adds your own (the `bustap query --where` language).
''' + DETECT_SAMPLE + '\n' + WEB_SAMPLE

_SOURCE_KEYS = {f.name for f in fields(SourceOptions)} | {"url", "topics", "password_env",
                                                          "token_env"}
_SOURCE_KEYS -= {"filters"}


@dataclass
class Config:
    name: str | None = None
    workers: int = 0
    sources: list[Source] = field(default_factory=list)
    sinks: list[Sink] = field(default_factory=list)
    decoders: DecoderChain = field(default_factory=DecoderChain)
    detect: DetectSettings = field(default_factory=DetectSettings)
    web: WebSettings | None = None  # [web]: the dashboard inside bustap run


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: {exc.strerror or exc}", value=str(p)) from exc
    return parse(text, origin=str(p))


def parse(text: str, *, origin: str = "config") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}", value=origin) from exc
    _only(data, {"name", "workers", "source", "sink", "decode", "detect", "rule",
                 "web"}, origin)
    cfg = Config(name=_opt_str(data, "name", origin))
    workers = data.get("workers", 0)
    if type(workers) is not int or not 0 <= workers <= 64:
        raise ConfigError(f"{origin}: workers must be an integer 0..64, not {workers!r}",
                          value=workers)
    cfg.workers = workers
    for i, src in enumerate(_tables(data, "source", origin)):
        cfg.sources.append(_source(src, f"{origin}: source[{i}]"))
    if not cfg.sources:
        raise ConfigError(f"{origin}: no [[source]]: nothing to tap", value="source")
    for i, snk in enumerate(_tables(data, "sink", origin)):
        where = f"{origin}: sink[{i}]"
        _only(snk, {"url", "password_env"}, where)
        cfg.sinks.append(make_sink(_sink_url(snk, where)))
    if not cfg.sinks:
        cfg.sinks.append(make_sink("bustap.duckdb"))
    decode = data.get("decode", {})
    if not isinstance(decode, dict):
        raise ConfigError(f"{origin}: [decode] must be a table", value="decode")
    _only(decode, {"rules", "decoders"}, f"{origin}: decode")
    # the tables themselves, checked by DecoderChain: worker processes rebuild it
    rules = list(_tables(decode, "rules", f"{origin}: decode"))
    names = decode.get("decoders")
    if names is not None and not (isinstance(names, list)
                                  and all(isinstance(n, str) for n in names)):
        raise ConfigError(f"{origin}: decode.decoders must be a list of names", value=names)
    cfg.decoders = DecoderChain(names, rules)
    cfg.detect = parse_detect(data, origin=origin)
    if "web" in data:
        cfg.web = parse_web(data["web"], origin)
    return cfg


def _source(table: dict[str, Any], where: str) -> Source:
    _only(table, _SOURCE_KEYS, where)
    url = _req_str(table, "url", where)
    opts = SourceOptions()
    for key, value in table.items():
        if key in ("url", "password_env", "token_env"):
            continue
        target = "filters" if key == "topics" else key
        default = getattr(opts, target)
        expected: type | tuple[type, ...] = (
            list if isinstance(default, list) else bool if isinstance(default, bool)
            else (int, float) if isinstance(default, int | float) else str)
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            shown = "***" if key in ("password", "token") else repr(value)
            raise ConfigError(f"{where}.{key}: expected {_type_name(expected)}, not {shown}",
                              value=key)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.{key}: expected a list of strings", value=key)
        setattr(opts, target, value)
    for key, target in (("password_env", "password"), ("token_env", "token")):
        env = table.get(key)
        if env is not None:
            if not isinstance(env, str) or env not in os.environ:
                raise ConfigError(f"{where}.{key}: environment variable {env!r} is not set",
                                  value=env)
            setattr(opts, target, os.environ[env])
    source = make_source(url, opts)
    for check in ("filters", "subjects"):
        validate = getattr(source, check, None)
        if callable(validate):
            validate()
    return source


def _sink_url(table: dict[str, Any], where: str) -> str:
    """The sink's URL, with the password of ``password_env`` put in its userinfo."""
    url = _req_str(table, "url", where)
    env = table.get("password_env")
    if env is None:
        return url
    if not isinstance(env, str) or env not in os.environ:
        raise ConfigError(f"{where}.password_env: environment variable {env!r} is not set",
                          value=env)
    from urllib.parse import quote, urlsplit

    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    user = user.partition(":")[0]
    if not user or not host:
        raise ConfigError(f"{where}.password_env: the url names no user (scheme://USER@host/...)"
                          " to give the password to", value="password_env")
    return url.replace(parts.netloc, f"{user}:{quote(os.environ[env], safe='')}@{host}", 1)


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return "a number"
    return {list: "a list", bool: "true or false", str: "a string"}.get(t, t.__name__)


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: "
                          f"{', '.join(sorted(allowed))})", value=unknown[0])


def _tables(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: {key} must be [[{key}]] tables", value=key)
    return value


def _req_str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key!r} is required (a string)", value=key)
    return value


def _opt_str(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key!r} must be a string", value=key)
    return value
