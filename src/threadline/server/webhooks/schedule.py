"""Event Grid's retry schedule, with jitter.

Delays after the 1st, 2nd, ... failed attempt: 10 s, 30 s, 1 min, 5 min,
10 min, 30 min, 1 h, 3 h, 6 h, then every 12 h; each randomised by +-20 %,
and multiplied by ``THREADLINE_WEBHOOK_RETRY_SCALE`` (1; tests shrink it).
Retries end at the subscription's max attempts or time to live, whichever
comes first.
"""

from __future__ import annotations

import random

__all__ = ["SCHEDULE", "retry_delay_ms"]

SCHEDULE = (10, 30, 60, 300, 600, 1800, 3600, 10800, 21600)
LATER = 43200
JITTER = 0.2


def retry_delay_ms(failures: int, scale: float = 1.0) -> int:
    """Milliseconds to wait after ``failures`` failed attempts (1 = the first failure)."""
    base = SCHEDULE[failures - 1] if 1 <= failures <= len(SCHEDULE) else LATER
    return max(1, int(base * 1000 * scale * random.uniform(1 - JITTER, 1 + JITTER)))
