"""Backpressure: a bound on the readings accepted but not yet confirmed or rejected.

Gateways can post much faster than the chain records. Without a bound the oracle answers 202
while confirmation latency grows without limit; with it, a POST that would take the backlog
past the bound is answered 503 with Retry-After and stores nothing, so gateways hold their
readings (they must keep them until a 202 anyway) and the queue stays drainable in seconds.

The backlog is counted in the store (open readings) every refresh_s and kept exact in between
by counting what ingest stores. The drain rate is measured, not configured: readings that left
the backlog (stored - (backlog_now - backlog_then)) per second while the chain had work, over
the last window_s. The
drain-time bound applies only while that rate is positive; during a chain outage only the
count bound holds (the readings are durable here, and the oracle keeps accepting them)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused and when to come back."""

    reason: str
    retry_after_s: int


class Backlog:
    SPAN_S = 2.0  # the drain rate is measured over spans at least this long

    def __init__(
        self,
        count_open: Callable[[], int],
        max_readings: int,
        max_drain_s: float,
        drain_floor: int,
        window_s: float = 30.0,
        refresh_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count_open = count_open
        self.max_readings = max_readings
        self.max_drain_s = max_drain_s
        self.drain_floor = drain_floor
        self.window_s = window_s
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counted = 0  # open readings at the last count
        self._counted_at = -math.inf
        self._stored_since = 0  # stored by ingest since that count
        self._reserved = 0  # admitted, being validated and stored now
        self._stored_total = 0
        # (time, open readings, stored_total) at each count, for the drain rate.
        self._samples: deque[tuple[float, int, int]] = deque()
        self._peak: float | None = None

    # ------------------------------------------------------------------ figures

    @property
    def readings(self) -> int:
        """Open readings, including those admitted and being stored now."""
        with self._lock:
            return self._counted + self._stored_since + self._reserved

    @property
    def drain_rate(self) -> float | None:
        """Readings confirmed or rejected per second over the window (None until measured)."""
        with self._lock:
            return self._rate()

    @property
    def drain_seconds(self) -> float:
        """How long the current backlog takes to drain at the measured rate (inf when the
        backlog is not draining)."""
        with self._lock:
            backlog = self._counted + self._stored_since + self._reserved
            rate = self._rate()
        if backlog == 0:
            return 0.0
        return backlog / rate if rate else math.inf

    def _rate(self) -> float | None:
        return self._peak

    def _measure(self) -> float | None:
        """What the chain takes when it has work: the mean drain rate over the window's
        stretches where the backlog stayed at or above half the floor (the submitter had full
        batches to send). Not the plain mean over the window: while gateways are held back (or
        just starting) the backlog runs low and that mean measures what arrived, which would
        hold them back further. Without such stretches, the best span of at least SPAN_S
        (a small backlog is let in anyway, below the floor)."""
        samples = list(self._samples)
        if len(samples) < 2 or samples[-1][0] - samples[0][0] < self.SPAN_S:
            return None
        busy_level = self.drain_floor / 2
        busy_time = busy_drained = 0.0
        for (t0, open0, stored0), (t1, open1, stored1) in zip(samples, samples[1:], strict=False):
            if open0 >= busy_level and open1 >= busy_level:
                busy_time += t1 - t0
                busy_drained += (stored1 - stored0) - (open1 - open0)
        if busy_time >= self.SPAN_S:
            return max(busy_drained, 0.0) / busy_time
        return self._best_span(samples)

    def _best_span(self, samples: list[tuple[float, int, int]]) -> float:
        best = 0.0
        j = 0
        for i, (t0, open0, stored0) in enumerate(samples):
            j = max(j, i + 1)
            while j < len(samples) and samples[j][0] - t0 < self.SPAN_S:
                j += 1
            if j == len(samples):
                break
            t1, open1, stored1 = samples[j]
            drained = (stored1 - stored0) - (open1 - open0)
            best = max(best, drained / (t1 - t0))
        return best

    # ------------------------------------------------------------------ admission

    def refresh(self, force: bool = False) -> None:
        """Counts the open readings in the store if the last count is older than refresh_s."""
        if not force and self._clock() - self._counted_at < self.refresh_s:
            return
        with self._lock:
            stored_before = self._stored_total
        counted = self._count_open()  # outside the lock: a store query
        now = self._clock()
        with self._lock:
            # What was stored while counting may or may not be in the count: assume not (the
            # bound errs on the safe side; the next count corrects it).
            self._stored_since = self._stored_total - stored_before
            self._counted, self._counted_at = counted, now
            self._samples.append((now, counted + self._stored_since, self._stored_total))
            while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
                self._samples.popleft()
            self._peak = self._measure()

    def admit(self, incoming: int) -> Refusal | None:
        """Reserves room for `incoming` readings, or says why not. Every admitted request must
        call settle() once it has stored (or refused) its readings."""
        self.refresh()
        with self._lock:
            backlog = self._counted + self._stored_since + self._reserved
            after = backlog + incoming
            rate = self._rate()
            refusal = self._refusal(backlog, after, rate)
            if refusal is None:
                self._reserved += incoming
            return refusal

    def _refusal(self, backlog: int, after: int, rate: float | None) -> Refusal | None:
        if after > self.max_readings and backlog > 0:
            excess = after - self.max_readings
            return Refusal(
                f"{backlog} readings wait for the chain; this request's {after - backlog} would "
                f"pass the bound of {self.max_readings}",
                _retry_after(excess / rate if rate else None),
            )
        # Only while the chain drains: when it does not (outage, hung node) the time to drain
        # is unknown, and accepting durably up to max_readings beats making gateways hold.
        if rate and after > self.drain_floor and after > rate * self.max_drain_s:
            # The measured rate is noisy (a few batches per span), and a gateway sleeping past
            # the moment the backlog drains leaves the chain idle: come back within half the
            # drain bound, by when half the backlog is gone.
            wait = min(after / rate - self.max_drain_s, self.max_drain_s / 2)
            return Refusal(
                f"{backlog} readings wait for the chain, which records {rate:.0f} readings/s: "
                f"more would take over {self.max_drain_s:g} s to confirm",
                _retry_after(wait),
            )
        return None

    def settle(self, reserved: int, stored: int) -> None:
        """Turns a reservation into the readings actually stored (0 when refused)."""
        with self._lock:
            self._reserved -= reserved
            self._stored_since += stored
            self._stored_total += stored


def _retry_after(seconds: float | None) -> int:
    """Whole seconds, 1..60; 5 when the chain is not draining at all (unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return 5
    return max(1, min(60, math.ceil(seconds)))
