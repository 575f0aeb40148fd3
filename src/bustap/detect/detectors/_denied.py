"""What the two "the broker said no" detectors share."""

from __future__ import annotations

from ...record import Record
from ..base import Detector, Finding, where_from, who


def denied(det: Detector, rec: Record, t: float, label: str) -> list[Finding]:
    client = who(rec)
    action = str(rec.get("action") or "publish")
    topic = str(rec.get("topic") or "?")
    user = rec.get("username")
    as_user = f" (user {user})" if user and user != client else ""
    group = {"client": client, "action": action, "topic": topic}
    return [det.hit(rec, t, group, f"{label}: {client}{as_user} may not {action} "
                    f"{topic!r}{where_from(rec)}", subject=client)]
