"""Mosquitto refused a publish or subscribe by its ACL (``Denied PUBLISH``)."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import Detector, Finding
from ._denied import denied


@register_detector
class AclDenied(Detector):
    id = "acl_denied"
    title = "publish or subscribe denied by the broker's ACL"
    events = frozenset({"acl_denied"})

    def feed(self, rec: Record, t: float) -> list[Finding]:
        if rec.get("broker") == "nats":
            return []  # permission_violation
        return denied(self, rec, t, "ACL denied")
