"""Portal page speed on a big chain: p95 of the member and operator pages over real HTTP.

The chain is bench_audit's (1,000,000 readings by default, straight through web3 on its own
Anvil) with 60 members instead of 20: 200 meters, one hourly claim per member (its first
meter's first 1,000 readings), transfers and retirements. The real portal process
(`zcx portal serve`) indexes it from the deployment block (its time is reported too), then every
member's summary page and the operator's members-and-meters page are fetched ROUNDS times each
over loopback HTTP; the first round warms up and is not counted.

ZCX_BENCH_PORTAL_READINGS (default 1,000,000) sets the size; the note says what was measured.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_audit
import httpx

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TARGET_READINGS = 1_000_000
MEMBERS = 60
ROUNDS = 6
TARGET_MS = 300
STARTUP_TIMEOUT = 3_600


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def _serve(rpc_url: str, deployments_dir: Path, db: Path, log_file: Path) -> tuple[Any, str]:
    port = bench_audit._free_port()
    command = [
        sys.executable,
        "-c",
        "from zcx.cli import main; main()",
        "portal",
        "serve",
        "--port",
        str(port),
        "--rpc-url",
        rpc_url,
        "--deployments",
        str(deployments_dir),
        "--db",
        str(db),
    ]
    out = log_file.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: Any, url: str, log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"portal exited: {log_file.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/operator", timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("portal did not come up")


def _timed(client: httpx.Client, url: str) -> float:
    t = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - t) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code}")
    return elapsed


def run() -> dict[str, dict[str, Any]]:
    size = int(os.environ.get("ZCX_BENCH_PORTAL_READINGS", TARGET_READINGS))
    bench_audit.OWNERS = MEMBERS  # build_chain registers OWNERS members
    with bench_audit.Anvil(accounts=3 + MEMBERS) as node, tempfile.TemporaryDirectory() as tmp:
        built, timings = bench_audit.build_chain(node.w3, size)
        from zcx.deployments import save

        folder = Path(tmp)
        save(built["deployment"], folder / "deployments")
        log_file = folder / "portal.log"
        t = time.perf_counter()
        process, url = _serve(node.url, folder / "deployments", folder / "index.sqlite", log_file)
        try:
            _wait_ready(process, url, log_file)
            index_seconds = time.perf_counter() - t
            members = node.w3.eth.accounts[3 : 3 + MEMBERS]
            member_ms: list[float] = []
            operator_ms: list[float] = []
            with httpx.Client(timeout=60) as client:
                for round_ in range(ROUNDS):
                    for address in members:
                        sample = _timed(client, f"{url}/member/{address}")
                        if round_:
                            member_ms.append(sample)
                    for _ in range(10):
                        sample = _timed(client, f"{url}/operator")
                        if round_:
                            operator_ms.append(sample)
        finally:
            process.terminate()
            process.wait(timeout=30)
    scale = (
        f"{built['readings']:,} readings, {MEMBERS} members, {built['meters']} meters; "
        f"real portal process over loopback HTTP"
    )
    return {
        "portal_member_page_p95_ms": {
            "value": round(_p95(member_ms), 1),
            "unit": "ms",
            "target": f"<= {TARGET_MS}",
            "note": f"{len(member_ms)} fetches of /member/<address> (balance, frozen, Fig. 6 "
            f"counters, recent history); median {statistics.median(member_ms):.1f} ms; {scale}",
        },
        "portal_operator_page_p95_ms": {
            "value": round(_p95(operator_ms), 1),
            "unit": "ms",
            "target": f"<= {TARGET_MS}",
            "note": f"{len(operator_ms)} fetches of /operator (every member and meter); "
            f"median {statistics.median(operator_ms):.1f} ms; {scale}",
        },
        "portal_index_seconds": {
            "value": round(index_seconds, 1),
            "unit": "s",
            "note": f"first start: index every event from the deployment block; {scale}",
        },
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(run(), indent=2))  # noqa: T201 (benchmark entry point prints its figures)
