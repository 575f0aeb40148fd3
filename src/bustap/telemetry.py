"""Self-metrics of one component (a source or a sink), kept inside the
pipeline's :class:`~bustap.pipeline.Counters`.

The names follow Vector's component spec: ``received`` (records that came
in), ``sent`` (records that went out: written to the sinks for a source,
accepted by the server for a sink), ``dropped`` by reason, ``spooled``
(written to the disk spool while a sink was down), ``errors`` (failed
writes, payloads kept raw) and ``queue_depth`` (what waits: batches in the
pipeline queue for a source, records in the spool for a sink).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: counters some sinks keep on themselves, reported with theirs
SINK_COUNTS = ("published", "unroutable", "duplicates", "rows_written")


@dataclass
class ComponentCounters:
    received: int = 0
    sent: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    spooled: int = 0
    errors: int = 0
    queue_depth: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, "sent": self.sent, "dropped": dict(self.dropped),
                "spooled": self.spooled, "errors": self.errors,
                "queue_depth": self.queue_depth}
