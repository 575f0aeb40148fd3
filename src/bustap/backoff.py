"""Waiting between retries, shared by the source supervisor and the spool:
full-jitter exponential backoff (the AWS architecture blog's "full jitter"),
capped, so that many clients retrying at once spread out instead of knocking
together."""

from __future__ import annotations

import random

#: 2**30 times any sane initial delay is far past every cap: no float overflow
#: however long a broker stays down (2.0**1100 would raise).
_MAX_EXPONENT = 30


def backoff(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first):
    uniform between ``initial / 2`` and ``min(maximum, initial * 2**attempt)``."""
    ceiling = min(maximum, initial * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT))
    return random.uniform(min(initial / 2, ceiling), ceiling)
