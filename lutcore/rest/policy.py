"""The one retry policy of every HTTP caller of the LUT server.

- Retried: connection failures and timeouts, and 429/502/503/504 (the server or its proxy says
  "not now"), with capped exponential backoff and jitter; a ``Retry-After`` answer header wins
  over the backoff (capped at ``max_retry_after``).
- Not retried: 500 (a bug answers the same way again; ``ServerFault`` tells the caller to keep its
  work and come back later) and every other status.
- Non-idempotent requests (POSTs not declared safe to repeat) are retried only when they cannot
  have been acted on: the connection was never made, or the server answered 429 or 503.
  Every POST of the LUT API is declared idempotent by the client method that sends it
  (measurements, validations and imports are keyed by run id; claims lost in transit come back
  when their lease ends), so in practice this guards new endpoints until someone decides.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
from typing import Callable, Optional, Tuple

RETRY_STATUS: Tuple[int, ...] = (429, 502, 503, 504)
NOT_ACTED_ON: Tuple[int, ...] = (429, 503)  # statuses that say the request was not processed


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """``retries`` extra attempts after the first; waits of ``backoff * 2**n`` capped at ``max_backoff``,
    each drawn from [(1 - jitter) * wait, wait] so that many boards do not retry in step."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0
    retry_status: Tuple[int, ...] = RETRY_STATUS

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries={self.retries} must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter={self.jitter} must be in [0, 1]")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff and max_backoff must be >= 0")

    def retryable(self, status: Optional[int], idempotent: bool, connected: bool) -> bool:
        """Whether a failed attempt may be sent again (``status`` None: no answer came back)."""
        if status is None:
            return idempotent or not connected
        if status not in self.retry_status:
            return False
        return idempotent or status in NOT_ACTED_ON

    def delay(self, attempt: int, retry_after: Optional[float] = None,
              rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(self.max_retry_after, retry_after))
        cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return cap * (1 - self.jitter * rand())


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (None: absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)
