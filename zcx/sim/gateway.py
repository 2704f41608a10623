"""Delivery of simulated readings the way real meter gateways do it: HTTP POSTs to the oracle's
`/v1/readings` with each gateway's own bearer token, at accelerated time; or CSV files for the
oracle's importer.

At accelerated time the simulated clock runs `speedup` times faster than the wall clock from the
window's start. Each gateway posts the readings that have ended every `post_every` slots of
simulated time (a HEMS uploading its buffer). When the oracle is slower than the clock, delivery
catches up without sleeping; nothing is skipped.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

WIRE_FIELDS = ("generated_wh", "consumed_wh", "sold_wh", "purchased_wh")
CSV_COLUMNS = ("meter_id", "interval_start", "interval_end", *WIRE_FIELDS)
JST = dt.timezone(dt.timedelta(hours=9), "JST")
RETRY_STATUSES = {429, 500, 502, 503, 504}


class GatewayError(RuntimeError):
    """The oracle refused a request; `problem` holds its application/problem+json body."""

    def __init__(self, gateway: str, status: int, problem: Any) -> None:
        self.gateway = gateway
        self.status = status
        self.problem = problem
        super().__init__(f"gateway {gateway}: oracle answered {status}: {problem}")


def iso(unix: int, tz: dt.tzinfo = JST) -> str:
    """ISO-8601 with an offset; Japanese gateways speak local time (+09:00)."""
    return dt.datetime.fromtimestamp(unix, tz).isoformat()


def wire_reading(row: Mapping[str, Any]) -> dict[str, Any]:
    """One reading as the oracle's API takes it."""
    out: dict[str, Any] = {
        "meter_id": str(row["meter_id"]),
        "interval_start": iso(int(row["start"])),
        "interval_end": iso(int(row["end"])),
    }
    for name in WIRE_FIELDS:
        out[name] = int(row[name])
    return out


@dataclass(frozen=True)
class Gateway:
    name: str
    token: str
    meters: tuple[str, ...]


@dataclass
class PostOutcome:
    accepted: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0


class GatewayClient:
    """One gateway's HTTP client. Retries connection errors and 429/5xx with backoff; 4xx refusals
    raise GatewayError (a real gateway would keep the readings and alert its owner)."""

    def __init__(
        self,
        base_url: str,
        gateway: Gateway,
        client: httpx.Client,
        attempts: int = 8,
        backoff_s: float = 0.2,
        stop: threading.Event | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.gateway = gateway
        self.client = client
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.stop = stop or threading.Event()

    def post(self, readings: Sequence[Mapping[str, Any]], outcome: PostOutcome) -> None:
        body = {"readings": [wire_reading(r) for r in readings]}
        headers = {"Authorization": f"Bearer {self.gateway.token}"}
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            if self.stop.is_set():
                raise GatewayError(self.gateway.name, 0, "delivery stopped")
            try:
                response = self.client.post(
                    f"{self.base_url}/v1/readings", json=body, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise GatewayError(self.gateway.name, 0, f"oracle unreachable: {exc}") from exc
                log.warning("gateway %s: %s; retrying in %.1fs", self.gateway.name, exc, delay)
            else:
                if response.status_code == 202:
                    data = response.json()
                    outcome.accepted += int(data.get("accepted", 0))
                    outcome.duplicates += int(data.get("duplicates", 0))
                    outcome.requests += 1
                    return
                if response.status_code not in RETRY_STATUSES or attempt == self.attempts:
                    raise GatewayError(self.gateway.name, response.status_code, _problem(response))
                log.warning("gateway %s: %s; retrying", self.gateway.name, response.status_code)
            outcome.retries += 1
            self.stop.wait(delay)
            delay = min(delay * 2, 5.0)


def _problem(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


@dataclass
class AcceleratedClock:
    """Simulated unix time running `speedup` times faster than the wall clock from `sim_start`."""

    sim_start: int
    speedup: float
    wall_start: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return self.sim_start + (time.monotonic() - self.wall_start) * self.speedup

    def sleep_until(self, sim_time: float) -> None:
        wait = (sim_time - self.now()) / self.speedup
        if wait > 0:
            time.sleep(wait)


def deliver(
    readings: pd.DataFrame,
    gateways: Iterable[Gateway],
    base_url: str,
    speedup: float,
    post_every: int = 12,
    workers: int = 4,
    slot_seconds: int = 1800,
    on_step: Callable[[int, int], None] | None = None,
    timeout_s: float = 30.0,
) -> PostOutcome:
    """Posts every reading in `readings` (columns of zcx.sim.simulate) through its gateway.

    Returns the totals. Raises GatewayError on the first refusal.
    """
    gateways = list(gateways)
    by_meter = {meter: gw for gw in gateways for meter in gw.meters}
    missing = set(readings["meter_id"]) - set(by_meter)
    if missing:
        raise ValueError(f"no gateway for meters: {sorted(missing)[:5]}")
    start = int(readings["start"].min())
    end = int(readings["end"].max())
    step = post_every * slot_seconds
    boundaries = list(range(start + step, end, step)) + [end]
    frame = readings.assign(gateway=readings["meter_id"].map(lambda m: by_meter[m].name))
    frame = frame.sort_values(["gateway", "start", "meter_id"])
    gw_by_name = {gw.name: gw for gw in gateways}
    outcome = PostOutcome()
    lock = threading.Lock()
    local = threading.local()
    clients: list[httpx.Client] = []

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=timeout_s)
            with lock:
                clients.append(local.client)
        return local.client

    def post(name: str, rows: list[dict[str, Any]]) -> None:
        partial = PostOutcome()
        GatewayClient(base_url, gw_by_name[name], client(), stop=stop).post(rows, partial)
        with lock:
            outcome.accepted += partial.accepted
            outcome.duplicates += partial.duplicates
            outcome.requests += partial.requests
            outcome.retries += partial.retries

    clock = AcceleratedClock(start, speedup)
    previous = start
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gateway")
    try:
        for n, boundary in enumerate(boundaries, 1):
            clock.sleep_until(boundary)
            due = frame[(frame["end"] > previous) & (frame["end"] <= boundary)]
            futures = [
                pool.submit(post, str(name), group.to_dict("records"))
                for name, group in due.groupby("gateway", sort=False)
            ]
            for future in futures:
                future.result()
            previous = boundary
            if on_step:
                on_step(n, len(boundaries))
    finally:
        # On an error or Ctrl-C, queued posts are dropped and retrying ones give up at once.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for c in clients:
            c.close()
    return outcome


def write_csv(readings: pd.DataFrame, path: Path) -> Path:
    """Interval values, one row per meter and slot, in the oracle API's field names and ISO times
    with +09:00 offsets (what the oracle's CSV importer reads as interval values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in readings.to_dict("records"):
            writer.writerow(wire_reading(row))
    return path


BROUTE_COLUMNS = ("meter_id", "timestamp", "forward", "reverse", "generation")
BROUTE_UNIT_WH = {0x01: 100, 0x02: 10, 0x03: 1}  # ECHONET Lite 0xE1 unit code -> Wh per count


def write_broute_csv(
    readings: pd.DataFrame, path: Path, unit_code: int = 0x03, digits: int = 8, seed: int = 0
) -> Path:
    """Japanese B-route style cumulative registers at every 30-minute mark, for the oracle's
    `import-csv --format broute`: forward (purchased, 0xEA), reverse (sold, 0xEB) and the PV
    meter's generation register, as raw counts of the ECHONET Lite unit `unit_code` (coefficient
    1), wrapping at 10^digits like a real meter. Registers start at seeded, meter-specific values.

    The importer derives consumption as generated + purchased - sold, which leaves out a
    battery's charge and discharge; with unit 0x03 (1 Wh) the other three figures are exact.
    """
    if unit_code not in BROUTE_UNIT_WH:
        raise ValueError(f"unit code 0x{unit_code:02X}: use 0x01, 0x02 or 0x03")
    per_count = BROUTE_UNIT_WH[unit_code]
    modulus = 10**digits
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0xB0])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(BROUTE_COLUMNS)
        for meter, group in readings.sort_values(["meter_id", "start"]).groupby("meter_id"):
            registers = [int(x) for x in rng.integers(0, modulus * per_count, 3)]
            first = int(group["start"].iloc[0])
            rows = [(first, *registers)]
            for start, end, bought, sold, gen in zip(
                group["start"],
                group["end"],
                group["purchased_wh"],
                group["sold_wh"],
                group["generated_wh"],
                strict=True,
            ):
                if rows[-1][0] != int(start):
                    raise ValueError(f"{meter}: readings are not contiguous at {int(start)}")
                registers = [
                    registers[0] + int(bought),
                    registers[1] + int(sold),
                    registers[2] + int(gen),
                ]
                rows.append((int(end), *registers))
            for stamp, forward, reverse, generation in rows:
                writer.writerow(
                    (
                        meter,
                        iso(stamp),
                        (forward // per_count) % modulus,
                        (reverse // per_count) % modulus,
                        (generation // per_count) % modulus,
                    )
                )
    return path
