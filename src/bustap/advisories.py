"""Broker releases with published security advisories, and the lowest safe
release per release line.

One table shared by the ``broker_version`` detector and ``bustap audit``.
Sources: Mosquitto's ``security.md`` and ChangeLog "Security" sections, the
nats-io/advisories index (see ``shared/reference/detection.md`` section 3).
A release line that is not in the table is judged by its neighbours: older
than the oldest listed line means unsupported (outdated), newer than the
newest listed line means no advisory is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (line, lowest release without a known advisory, advisories fixed above it).
# A line whose minimum lies in a later line has no fixed release of its own.
_TABLE: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "mosquitto": (
        ("1", "2.0.21", ("CVE-2019-11779", "CVE-2021-34431", "CVE-2023-28366",
                         "CVE-2023-0809", "CVE-2023-3592")),
        ("2.0", "2.0.21", ("CVE-2021-34434", "CVE-2023-28366", "CVE-2023-0809",
                           "CVE-2023-3592", "CVE-2024-8376", "Eclipse #248")),
        ("2.1", "2.1.0", ()),
    ),
    "nats": (
        ("1", "2.12.12", ("CVE-2022-24450", "CVE-2023-47090", "CVE-2025-30215")),
        ("2.0", "2.12.12", ("CVE-2022-24450", "CVE-2023-47090", "CVE-2025-30215")),
        # 2.2 .. 2.11: the 2026 advisories were fixed for 2.12 and 2.14 only
        ("2.2", "2.12.12", ("CVE-2023-47090", "CVE-2025-30215", "CVE-2026-33216",
                            "CVE-2026-33217", "GHSA-q59r-vq66-pxc2")),
        ("2.10", "2.12.12", ("CVE-2025-30215", "CVE-2026-27571", "CVE-2026-33216",
                             "GHSA-q59r-vq66-pxc2")),
        ("2.11", "2.12.12", ("CVE-2025-30215", "CVE-2026-33216", "CVE-2026-33217",
                             "GHSA-4g68-3pwx-5vfj", "GHSA-q59r-vq66-pxc2")),
        ("2.12", "2.12.12", ("CVE-2026-27571", "CVE-2026-33216", "GHSA-38x3-76xf-cq45",
                             "GHSA-q59r-vq66-pxc2")),
        ("2.14", "2.14.3", ("GHSA-qrcv-3558-gj4f", "GHSA-g33f-6538-grxh",
                            "GHSA-q59r-vq66-pxc2")),
    ),
}
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class Outdated:
    broker: str
    version: str
    minimum: str
    advisories: tuple[str, ...]


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``'mosquitto version 2.0.11'``, ``'v2.9.10'`` -> ``(2, 0, 11)``."""
    m = _VERSION.search(text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _line_key(line: str) -> tuple[int, ...]:
    return tuple(int(p) for p in line.split("."))


def check(broker: str, version: str) -> Outdated | None:
    """The advisories that ``version`` of ``broker`` (mosquitto|nats) is
    below, or None when it is not known to be affected (or unparseable)."""
    table = _TABLE.get(broker)
    ver = parse_version(version)
    if table is None or ver is None:
        return None
    chosen = None
    for line, minimum, ids in table:
        key = _line_key(line)
        if ver[: len(key)] >= key:
            chosen = (minimum, ids)
    if chosen is None:  # older than every listed line
        chosen = (table[0][1], table[0][2])
    minimum, ids = chosen
    if ver >= (parse_version(minimum) or ver):
        return None
    return Outdated(broker, ".".join(map(str, ver)), minimum, ids)
