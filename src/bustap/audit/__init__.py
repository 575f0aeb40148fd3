"""Active, non-destructive posture scan of MQTT and NATS brokers.

One module per check set: :mod:`.mqtt`, :mod:`.nats`, :mod:`.tls`
(certificates), :mod:`.secrets` (what a payload must not hold), and
:mod:`.findings` (ids, severities, JSON and SARIF). :func:`audit` runs the
checks for every URL at once and returns one report per URL.
"""

from __future__ import annotations

import asyncio

from ..errors import ConfigError
from ..sources import SourceOptions
from ..urls import Url, parse_url
from .base import AuditSettings
from .findings import CATALOGUE, Finding, Severity, TargetReport, fails, to_json, to_sarif
from .mqtt import audit_mqtt
from .nats import audit_nats, monitor_port

_CHECKS = {"mqtt": audit_mqtt, "mqtts": audit_mqtt, "nats": audit_nats, "tls": audit_nats,
           "natss": audit_nats}

__all__ = ["CATALOGUE", "AuditSettings", "Finding", "Severity", "TargetReport", "audit",
           "fails", "parse_targets", "to_json", "to_sarif"]


def parse_targets(raw_urls: list[str]) -> list[Url]:
    """Parse every URL before anything connects: a bad one is a usage error."""
    urls = [parse_url(raw) for raw in raw_urls]
    for url in urls:
        if url.scheme not in _CHECKS:
            known = ", ".join(f"{s}://" for s in _CHECKS)
            raise ConfigError(f"cannot audit {url.redacted!r}: scheme {url.scheme}:// is not "
                              f"one of {known}", value=url.redacted)
        if len(url.hosts) > 1:
            # each server is its own posture (version, TLS, auth): one report per target
            raise ConfigError(f"cannot audit {url.redacted!r}: it names {len(url.hosts)} "
                              "servers; give each as a URL of its own", value=url.redacted)
        if _CHECKS[url.scheme] is audit_nats:
            monitor_port(url, 8222)  # a bad ?monitor= is a usage error before any scan
    return urls


async def audit(urls: list[Url], options: SourceOptions, settings: AuditSettings
                ) -> list[TargetReport]:
    return list(await asyncio.gather(*(_CHECKS[u.scheme](u, options, settings)
                                       for u in urls)))
