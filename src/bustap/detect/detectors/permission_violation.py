"""nats-server refused a publish or a subscription by the user's permissions
(``Publish Violation`` / ``Subscription Violation``): a BOSH agent sending a
heartbeat for another agent, a client subscribing to ``>``."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import Detector, Finding
from ._denied import denied


@register_detector
class PermissionViolation(Detector):
    id = "permission_violation"
    title = "nats-server permissions violation"
    events = frozenset({"acl_denied"})

    def feed(self, rec: Record, t: float) -> list[Finding]:
        if rec.get("broker") != "nats":
            return []
        return denied(self, rec, t, "permissions violation")
