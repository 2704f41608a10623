"""Oracle end-to-end benchmark: 10,000 readings from 1,000 meters (10 half-hour slots each)
posted by concurrent gateway clients over HTTP to an oracle subprocess (`python -m oracle
serve`, the shipped defaults plus a 0.25 s batch age), measured from each POST to the
reading's ReadingRecorded event seen on chain (own Anvil, automine, 30M block gas limit).

Two gateway shapes run one after the other, each on a fresh Anvil and store:
- `feeder` (the headline figures): 10 gateways of 100 meters each (a feeder, or a block of
  flats, whose gateway posts all its meters' readings of a slot in one request: 100 per POST);
- `small`: 100 gateways of 10 meters (10 readings per POST, 100 concurrent clients), to show
  what smaller requests cost.

run() -> oracle_readings_per_s, oracle_latency_p50_s, oracle_latency_p99_s (feeder) and the
oracle_small_* / oracle_post_* / oracle_gas_* / oracle_batches figures.
ZCX_BENCH_ORACLE_WRAPPER="py-spy record -o out.txt -f raw --" profiles the oracle process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from oracle.chain import READING_RECORDED
from oracle.devchain import (
    Anvil,
    deploy_registries,
    free_port,
    register_meters,
    rpc,
    save_deployment,
)
from oracle.store import Store
from zcx.ids import meter_label

log = logging.getLogger(__name__)

METERS = 1_000
SLOTS = 10
INTERVAL = 1800
TARGET = ">= 1000"


def _iso(ts: int) -> str:
    from datetime import datetime, timedelta, timezone

    return datetime.fromtimestamp(ts, timezone(timedelta(hours=9))).isoformat()


class ChainWatcher(threading.Thread):
    """Notes when each (meter, start) first appears in a ReadingRecorded log. Raw JSON-RPC
    (web3's log formatting would cost this process seconds of the CPU the oracle needs)."""

    def __init__(self, url: str, registry: str, start_block: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.registry = registry
        self.next_block = start_block
        self.seen: dict[tuple[str, int], float] = {}
        self.stop = threading.Event()
        self.client = httpx.Client(timeout=30)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.client.post(
            self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        ).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def run(self) -> None:
        topic = "0x" + READING_RECORDED.hex()
        while not self.stop.is_set():
            head = int(self._rpc("eth_blockNumber", []), 16)
            if head >= self.next_block:
                logs = self._rpc(
                    "eth_getLogs",
                    [
                        {
                            "address": self.registry,
                            "fromBlock": hex(self.next_block),
                            "toBlock": hex(head),
                            "topics": [topic],
                        }
                    ],
                )
                now = time.time()
                for entry in logs:
                    key = (
                        meter_label(bytes.fromhex(entry["topics"][1][2:])),
                        int(entry["data"][2:66], 16),
                    )
                    self.seen.setdefault(key, now)
                self.next_block = head + 1
            self.stop.wait(0.02)


async def _gateway(
    url: str, token: str, meters: list[str], epoch: int, posted: dict[tuple[str, int], float]
) -> None:
    """One gateway: for each slot, one POST with the readings of all its meters."""
    rng = random.Random(meters[0])
    async with httpx.AsyncClient(timeout=60) as client:
        for slot in range(SLOTS):
            start = epoch + slot * INTERVAL
            body = {
                "readings": [
                    {
                        "meter_id": m,
                        "interval_start": _iso(start),
                        "interval_end": _iso(start + INTERVAL),
                        "generated_wh": rng.randint(0, 2_000),
                        "consumed_wh": rng.randint(0, 1_000),
                        "sold_wh": rng.randint(0, 1_000),
                        "purchased_wh": rng.randint(0, 500),
                    }
                    for m in meters
                ]
            }
            t0 = time.time()
            r = await client.post(
                f"{url}/v1/readings", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            if r.status_code != 202:
                raise RuntimeError(f"POST failed: {r.status_code} {r.text[:300]}")
            for m in meters:
                posted[(m, start)] = t0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Outcome:
    gateways: int
    rate: float
    p50: float
    p99: float
    posting_s: float
    gas_per_reading: float
    batches: int


def scenario(gateways_count: int) -> Outcome:
    """One end-to-end run: fresh Anvil, registry, 1,000 meters, store and oracle process."""
    with tempfile.TemporaryDirectory(prefix="zcx-bench-oracle-", ignore_cleanup_errors=True) as t:
        tmp = Path(t)
        anvil = Anvil(tmp / "anvil.json").start()
        proc = None
        try:
            key = Account.create().key
            signer = Account.from_key(key).address
            record, w3 = deploy_registries(anvil.url, [signer], quorum=1)
            now = int(w3.eth.get_block("latest")["timestamp"])
            epoch = (now - 2 * 86400) // INTERVAL * INTERVAL
            labels = [f"BENCH-{i:05d}" for i in range(METERS)]
            for i in range(0, METERS, 250):
                register_meters(
                    w3,
                    record,
                    w3.eth.accounts[3 + i // 250],
                    labels[i : i + 250],
                    5_000,
                    epoch - 86400,
                )
            rpc(anvil.url, "anvil_setBalance", [signer, hex(10**22)])
            save_deployment(record, tmp / "deployments")
            db = tmp / "oracle.db"
            store = Store(db)
            per = METERS // gateways_count
            gateways = []
            for g in range(gateways_count):
                meters = labels[g * per : (g + 1) * per]
                token = store.add_gateway(f"gw-{g}")
                store.bind(f"gw-{g}", meters)
                gateways.append((token, meters))
            store.close()
            port = free_port()
            env = {
                **os.environ,
                "ZCX_ORACLE_DB_PATH": str(db),
                "ZCX_ORACLE_RPC_URL": anvil.url,
                "ZCX_ORACLE_DEPLOYMENTS_DIR": str(tmp / "deployments"),
                "ZCX_ORACLE_DEV_PRIVATE_KEY": "0x" + bytes(key).hex(),
                "ZCX_ORACLE_BATCH_MAX_AGE_S": "0.25",
                "ZCX_ORACLE_BATCH_MAX": "1000",
            }
            wrapper = os.environ.get("ZCX_BENCH_ORACLE_WRAPPER", "").split()
            command = [*wrapper, sys.executable, "-m", "oracle", "serve", "--port", str(port)]
            logfile = (tmp / "oracle.log").open("wb")
            proc = subprocess.Popen(command, env=env, stdout=logfile, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("oracle did not start:\n" + (tmp / "oracle.log").read_text())
                time.sleep(0.1)
            registry = record.contracts["GenerationRegistry"]
            watcher = ChainWatcher(anvil.url, registry, int(w3.eth.block_number) + 1)
            watcher.start()
            posted: dict[tuple[str, int], float] = {}
            began = time.time()

            async def post_all() -> None:
                await asyncio.gather(*(_gateway(url, t, m, epoch, posted) for t, m in gateways))

            asyncio.run(post_all())
            posting_done = time.time()
            total = METERS * SLOTS
            deadline = time.time() + 600
            while len(watcher.seen) < total and time.time() < deadline:
                time.sleep(0.05)
            watcher.stop.set()
            watcher.join(5)
            if len(watcher.seen) < total:
                raise RuntimeError(
                    f"only {len(watcher.seen)} of {total} readings reached the chain"
                )
            with sqlite3.connect(db) as c:
                gas, batches = c.execute(
                    "SELECT SUM(gas_used), COUNT(*) FROM batches WHERE state = 'confirmed'"
                ).fetchone()
                rejected = c.execute(
                    "SELECT COUNT(*) FROM readings WHERE state = 'rejected'"
                ).fetchone()[0]
            if rejected:
                raise RuntimeError(f"{rejected} readings were rejected; the scenario is invalid")
            last = max(watcher.seen.values())
            latencies = [watcher.seen[k] - posted[k] for k in posted]
            return Outcome(
                gateways=gateways_count,
                rate=total / (last - began),
                p50=_percentile(latencies, 0.5),
                p99=_percentile(latencies, 0.99),
                posting_s=posting_done - began,
                gas_per_reading=gas / total,
                batches=int(batches),
            )
        finally:
            if os.environ.get("ZCX_BENCH_KEEP_LOG"):
                Path(os.environ["ZCX_BENCH_KEEP_LOG"]).write_bytes(
                    (tmp / "oracle.log").read_bytes()
                )
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # uvicorn (and py-spy, when wrapped) stop cleanly
                proc.wait(30)
            anvil.stop()


def run() -> dict[str, dict[str, Any]]:
    feeder = scenario(10)
    small = scenario(100)
    setup = (
        f"{METERS * SLOTS} readings of {METERS} meters ({SLOTS} half-hour slots each), own Anvil "
        "(automine, 30M gas blocks), oracle subprocess with its defaults (batches <= 1000, "
        "0.25 s max age), 2-core machine"
    )

    def shape(o: Outcome) -> str:
        per = METERS // o.gateways
        return f"{o.gateways} concurrent gateways x {per} meters ({per} readings per POST)"

    def figures(prefix: str, o: Outcome, target: str | None) -> dict[str, dict[str, Any]]:
        rate: dict[str, Any] = {
            "value": round(o.rate, 1),
            "unit": "readings/s",
            "note": f"{shape(o)}; {setup}; from the first POST to the last ReadingRecorded "
            f"seen on chain; {o.batches} batches",
        }
        if target:
            rate["target"] = target
        return {
            f"{prefix}readings_per_s": rate,
            f"{prefix}latency_p50_s": {
                "value": round(o.p50, 3),
                "unit": "s",
                "note": f"per reading, POST sent -> ReadingRecorded seen on chain; {shape(o)}",
            },
            f"{prefix}latency_p99_s": {
                "value": round(o.p99, 3),
                "unit": "s",
                "note": f"per reading, POST sent -> ReadingRecorded seen on chain; {shape(o)}",
            },
        }

    out = figures("oracle_", feeder, TARGET)
    out.update(figures("oracle_small_", small, None))
    posts = f"time for all {METERS * SLOTS} readings' POSTs to be answered 202 (on disk)"
    out["oracle_post_s"] = {
        "value": round(feeder.posting_s, 2),
        "unit": "s",
        "note": f"{posts}; {shape(feeder)}",
    }
    out["oracle_small_post_s"] = {
        "value": round(small.posting_s, 2),
        "unit": "s",
        "note": f"{posts}; {shape(small)}",
    }
    out["oracle_gas_per_reading"] = {
        "value": round(feeder.gas_per_reading),
        "unit": "gas/reading",
        "note": "receipts' gasUsed / readings in the feeder run: every meter's first-ever run "
        "(fresh storage) is included; batches group each meter's consecutive intervals",
    }
    out["oracle_batches"] = {
        "value": feeder.batches,
        "unit": "batches",
        "note": "confirmed submitBatch transactions in the feeder run",
    }
    return out


if __name__ == "__main__":
    import json

    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    print(json.dumps(run(), indent=2))  # noqa: T201 - a benchmark's output
