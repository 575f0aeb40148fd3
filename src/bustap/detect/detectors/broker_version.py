"""A broker release below the lowest one free of published advisories for
its release line (:mod:`bustap.advisories`): from the broker's start-up
lines, nats-server's INFO (``log_init``) and the monitoring endpoint."""

from __future__ import annotations

from typing import Any

from ... import advisories
from ...record import Record
from .. import register_detector
from ..base import Clear, Context, Detector, Finding


@register_detector
class BrokerVersion(Detector):
    id = "broker_version"
    title = "broker version with known advisories"
    events = frozenset({"broker_started", "broker_running", "broker_info", "log_init"})
    sticky = True  # resolved when the broker is seen running a fixed release
    # a minimum of your own per broker ("2.0.18"); empty: the advisories table
    params = {"mosquitto": "", "nats": ""}
    mosquitto: str
    nats: str

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.outdated: dict[str, str] = {}  # source -> key of its firing alert

    def feed(self, rec: Record, t: float) -> list[Finding]:
        version = rec.get("version")
        if not isinstance(version, str) or not version:
            return []
        broker = rec.get("broker")
        if broker is None and rec.get("event_type") == "log_init" \
                and rec.get("protocol") in ("nats", "jetstream"):
            broker = "nats"
        if broker not in ("mosquitto", "nats"):
            return []
        source = str(rec.get("source") or "")
        found = advisories.check(broker, version)
        own = self.mosquitto if broker == "mosquitto" else self.nats
        if own:
            ver, floor = advisories.parse_version(version), advisories.parse_version(own)
            found = advisories.Outdated(broker, version, own, found.advisories if found
                                        else ()) if ver and floor and ver < floor else None
        out: list[Finding] = []
        group = {"broker": broker, "version": version}
        key = f"broker={broker},version={version}"
        old = self.outdated.get(source)
        if old is not None and old != key:
            out.append(Clear(old, t))
            del self.outdated[source]
        if found is not None:
            self.outdated[source] = key
            ids = ", ".join(found.advisories[:4]) + (" ..." if len(found.advisories) > 4
                                                    else "")
            name = "nats-server" if broker == "nats" else broker
            out.append(self.hit(rec, t, group, f"{name} {found.version} is below {found.minimum}"
                                f", the lowest release of its line without known advisories"
                                + (f" ({ids})" if ids else ""),
                                subject=f"{name} {found.version}"))
        return out
