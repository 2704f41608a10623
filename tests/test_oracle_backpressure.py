"""Backpressure (issue 10, point 8). The unconfirmed backlog is bounded: a POST that would take
it past the bound is answered 503 with Retry-After and problem+json and stores nothing, also
when many gateways post at once; once the chain drains the backlog, POSTs are accepted again.
/metrics exports the backlog and the measured drain rate. The drain-time bound is checked
on the Backlog itself with a manual clock."""

from __future__ import annotations

import math
import threading

import httpx
import pytest
from oracle_fixtures import INTERVAL, own_devnet, recorded_counts, start_oracle, wait_until, wire

from oracle.backlog import Backlog

METERS = [f"BP-{i:02d}" for i in range(10)]
BOUND = 30


@pytest.fixture
def devnet(tmp_path, oracle_keys):
    with own_devnet(tmp_path, oracle_keys[0], METERS) as chain_parts:
        yield chain_parts


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_bound_refuses_with_retry_after_and_stores_nothing(devnet, tmp_path, oracle_keys):
    anvil, record, w3, epoch = devnet
    for api in start_oracle(
        tmp_path,
        anvil.url,
        tmp_path / "deployments",
        oracle_keys[0],
        METERS,
        max_backlog_readings=BOUND,
        backoff_max_s=0.5,
    ):
        assert api.post([wire(m, epoch) for m in METERS]).status_code == 202
        api.wait_final(10)
        anvil.stop()  # nothing drains now
        for slot in (1, 2, 3):
            assert api.post([wire(m, epoch + slot * INTERVAL) for m in METERS]).status_code == 202
        r = api.post([wire(m, epoch + 4 * INTERVAL) for m in METERS])
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        problem = r.json()
        assert problem["title"] == "backlog full" and problem["errors"][0]["field"] == "readings"
        assert str(BOUND) in problem["detail"]
        assert api.store.count_readings() == 40  # the refused request stored nothing
        # Many gateways at once cannot overshoot the bound between check and store.
        answers: list[int] = []

        def one(slot: int, api=api, answers=answers) -> None:
            answers.append(
                api.post([wire(m, epoch + slot * INTERVAL) for m in METERS[:1]]).status_code
            )

        threads = [threading.Thread(target=one, args=(s,)) for s in range(5, 15)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(answers) == {503}
        assert api.store.count_readings() == 40
        assert _metric(api.url, "zcx_oracle_backlog_readings") == BOUND
        rejected = 'zcx_oracle_readings_rejected_total{reason="backpressure",stage="ingest"}'
        assert _metric(api.url, rejected) == 20

        anvil.start()  # the chain drains the backlog; gateways come back and are accepted
        # Scraping /metrics while it drains is what samples the drain (as Prometheus would).
        wait_until(
            lambda url=api.url: _metric(url, "zcx_oracle_backlog_readings") == 0, 60, "drained"
        )
        api.wait_final(40, timeout=60)
        r = api.post([wire(m, epoch + 4 * INTERVAL) for m in METERS])
        assert r.status_code == 202, r.text
        api.wait_final(50, timeout=60)
    counts = recorded_counts(w3, record.contracts["GenerationRegistry"])
    assert len(counts) == 50 and set(counts.values()) == {1}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _backlog(open_count: list[int], clock: Clock, **kw) -> Backlog:
    settings = {"max_readings": 100_000, "max_drain_s": 5.0, "drain_floor": 1_000}
    return Backlog(lambda: open_count[0], **{**settings, **kw}, window_s=10, clock=clock)


def test_drain_time_bound_uses_the_measured_rate():
    open_count, clock = [0], Clock()
    backlog = _backlog(open_count, clock)
    assert backlog.drain_rate is None and backlog.admit(3_000) is None  # not measured yet
    backlog.settle(3_000, 3_000)
    open_count[0] = 3_000
    # The chain confirms 200 readings/s: 10 s later 2,000 of them are gone.
    clock.now, open_count[0] = 10.0, 1_000
    backlog.refresh(force=True)
    assert backlog.drain_rate == pytest.approx(200.0)
    assert backlog.drain_seconds == pytest.approx(5.0)
    # 1,000 waiting at 200/s is 5 s: nothing more fits within max_drain_s = 5 s.
    refusal = backlog.admit(100)
    assert refusal is not None and "200 readings/s" in refusal.reason
    assert refusal.retry_after_s == 1  # (1,100 / 200) - 5 = 0.5 s, rounded up
    # Far over: still back within half the drain bound (the rate is noisy; a gateway sleeping
    # past the moment the backlog drains would leave the chain idle).
    assert backlog.admit(50_000).retry_after_s == 3  # min(255 - 5, 5 / 2) s, rounded up
    # Below the floor the drain bound does not apply (a small queue always gets in).
    clock.now, open_count[0] = 20.0, 100
    backlog.refresh(force=True)
    assert backlog.admit(500) is None


def test_rate_is_what_the_chain_took_not_what_arrived():
    """Gateways held back (or idle) leave the backlog low: the mean over the window would say
    200 readings/s although the chain took 1,000/s when it had work. The best span counts."""
    open_count, clock = [0], Clock()
    backlog = _backlog(open_count, clock)
    backlog.refresh(force=True)
    assert backlog.admit(2_000) is None
    backlog.settle(2_000, 2_000)
    clock.now = 2.0  # all 2,000 confirmed within 2 s; then nothing arrives for 8 s
    backlog.refresh(force=True)
    clock.now = 10.0
    backlog.refresh(force=True)
    assert backlog.drain_rate == pytest.approx(1_000.0)
    assert backlog.admit(3_000) is None  # 3 s at 1,000/s (at the mean's 200/s: 15 s)
    refusal = backlog.admit(3_000)  # 6,000 waiting: 6 s > 5 s
    assert refusal is not None and refusal.retry_after_s == 1


def test_stalled_chain_keeps_accepting_up_to_the_count_bound():
    """During an outage nothing drains: the time to drain is unknown, so only the count bound
    holds (the readings are durable in the store; gateways need not hold them)."""
    open_count, clock = [5_000], Clock()
    backlog = _backlog(open_count, clock, max_readings=6_000)
    backlog.refresh(force=True)
    clock.now = 10.0
    backlog.refresh(force=True)
    assert backlog.drain_rate == 0.0 and math.isinf(backlog.drain_seconds)
    assert backlog.admit(1_000) is None
    refusal = backlog.admit(1)
    assert refusal is not None and refusal.retry_after_s == 5  # no rate: a fixed 5 s


def test_reservations_hold_the_bound_under_concurrency():
    open_count, clock = [0], Clock()
    backlog = _backlog(open_count, clock, max_readings=1_000)
    admitted: list[int] = []

    def gateway() -> None:
        for _ in range(50):
            if backlog.admit(7) is None:
                admitted.append(7)  # stored by the caller later: the reservation holds room

    threads = [threading.Thread(target=gateway) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) <= 1_000 and backlog.readings == sum(admitted)
    backlog.settle(sum(admitted), 0)  # all refused later (422): the room is given back
    assert backlog.readings == 0
