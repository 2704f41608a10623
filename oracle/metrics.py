"""Prometheus figures of one oracle (its own registry, so several oracles can share a process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from oracle.backlog import Backlog

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800)


class Metrics:
    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "zcx_oracle_readings_accepted", "Readings accepted at ingest", registry=self.registry
        )
        self.rejected = Counter(
            "zcx_oracle_readings_rejected",
            "Readings refused at ingest or rejected by the chain",
            ["stage", "reason"],
            registry=self.registry,
        )
        self.confirmed = Counter(
            "zcx_oracle_readings_confirmed", "Readings recorded on chain", registry=self.registry
        )
        self.queue = Gauge(
            "zcx_oracle_queue_depth",
            "Readings not yet confirmed or rejected",
            registry=self.registry,
        )
        self.queue.set_function(queue_depth)
        self.latency = Histogram(
            "zcx_oracle_submit_latency_seconds",
            "From acceptance to the chain's verdict, per reading",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.gas = Counter(
            "zcx_oracle_gas_used", "Gas used by submitted batches", registry=self.registry
        )
        self.batches = Counter(
            "zcx_oracle_batches", "Batches by outcome", ["outcome"], registry=self.registry
        )
        self.chain_errors = Counter(
            "zcx_oracle_chain_unavailable",
            "Failed attempts to reach the chain",
            registry=self.registry,
        )

    def watch_backlog(self, backlog: Backlog) -> None:
        """Backpressure figures, read at scrape time (counting the store at most every
        refresh_s, so that they move also while no POST arrives)."""
        if getattr(self, "_backlog_watched", False):
            return  # one app per oracle, usually; a second one shares the figures
        self._backlog_watched = True

        def fresh(read: Callable[[], float]) -> Callable[[], float]:
            def value() -> float:
                backlog.refresh()
                return read()

            return value

        gauges = {
            "zcx_oracle_backlog_readings": (
                "Readings accepted and not yet confirmed or rejected (bounded by backpressure)",
                lambda: float(backlog.readings),
            ),
            "zcx_oracle_drain_rate_readings_per_second": (
                "Readings leaving the backlog per second (confirmed or rejected), measured",
                lambda: float(backlog.drain_rate or 0.0),
            ),
            "zcx_oracle_backlog_drain_seconds": (
                "Time the backlog takes to drain at the measured rate (+Inf: not draining)",
                lambda: float(backlog.drain_seconds),
            ),
        }
        for name, (text, read) in gauges.items():
            Gauge(name, text, registry=self.registry).set_function(fresh(read))
