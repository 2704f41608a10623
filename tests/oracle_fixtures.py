"""Shared pieces of the oracle tests (imported by tests/test_oracle_*.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from oracle.api import create_app
from oracle.chain import Chain
from oracle.devchain import (
    Anvil,
    ServerThread,
    deploy_registries,
    register_meters,
    rpc,
    save_deployment,
)
from oracle.service import Oracle
from oracle.settings import OracleSettings
from oracle.signer import Signer
from oracle.store import Store
from zcx import deployments
from zcx.deployments import Deployment

INTERVAL = 1800


@contextlib.contextmanager
def own_devnet(
    tmp_path: Path,
    signer_key: bytes,
    meters: list[str],
    more_signer_keys: Sequence[bytes] = (),
    quorum: int = 1,
) -> Iterator[tuple[Anvil, Deployment, Any, int]]:
    """An Anvil of the test's own (stoppable, with a state file), a registry signed by
    `signer_key` (plus `more_signer_keys`, `quorum` of them needed), `meters` (5 kW) registered
    to test account 3, and the deployment file under tmp_path/deployments. Yields (anvil,
    record, w3, epoch), epoch an aligned time 10 days ago. Every signer is funded."""
    anvil = Anvil(tmp_path / "anvil-state.json").start()
    try:
        signers = [Account.from_key(k).address for k in (signer_key, *more_signer_keys)]
        record, w3 = deploy_registries(anvil.url, signers, quorum=quorum)
        now = int(w3.eth.get_block("latest")["timestamp"])
        epoch = (now - 10 * 86400) // INTERVAL * INTERVAL
        register_meters(w3, record, w3.eth.accounts[3], meters, 5_000, epoch - 86400)
        for signer in signers:
            rpc(anvil.url, "anvil_setBalance", [signer, hex(10**21)])
        save_deployment(record, tmp_path / "deployments")
        yield anvil, record, w3, epoch
    finally:
        anvil.stop()


def iso(ts: int) -> str:
    """Unix seconds as ISO-8601 in JST (+09:00), as a Japanese gateway would send it."""
    from datetime import datetime, timedelta, timezone

    return datetime.fromtimestamp(ts, timezone(timedelta(hours=9))).isoformat()


def wire(
    meter: str,
    start: int,
    gen: int = 1000,
    cons: int = 400,
    sold: int = 600,
    bought: int = 0,
    length: int = INTERVAL,
) -> dict[str, Any]:
    return {
        "meter_id": meter,
        "interval_start": iso(start),
        "interval_end": iso(start + length),
        "generated_wh": gen,
        "consumed_wh": cons,
        "sold_wh": sold,
        "purchased_wh": bought,
    }


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def write_deployment(w3: Any, contracts: dict[str, str], directory: Path) -> Path:
    """A deployment record for contracts deployed by Ape fixtures. Block 0 is used as the
    deployment block: its hash is stable across Ape's snapshots, and log searches start there."""
    block = w3.eth.get_block(0)
    record = Deployment(
        chain_id=int(w3.eth.chain_id),
        network="ethereum:local",
        deployment_block=0,
        deployment_block_hash=bytes(block["hash"]).hex(),
        contracts=contracts,
    )
    return deployments.save(record, directory)


@dataclass
class RunningOracle:
    oracle: Oracle
    server: ServerThread
    token: str
    peer_tokens: dict[str, str] | None = None  # credentials this oracle issued, by peer name

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> Store:
        return self.oracle.store

    def post(
        self, readings: list[dict[str, Any]], token: str | None = None, *, raw: bool = False
    ) -> httpx.Response:
        """POSTs as a gateway does: a 503 "meter lookup pending" (the oracle is still asking the
        chain about a meter it has not seen) is retried after its Retry-After, up to 30 s.
        `raw=True` returns the first answer (tests of the 503 itself)."""
        deadline = time.monotonic() + 30
        while True:
            r = httpx.post(
                f"{self.url}/v1/readings",
                json={"readings": readings},
                headers={"Authorization": f"Bearer {token or self.token}"},
                timeout=30,
            )
            if raw or not _lookup_pending(r) or time.monotonic() > deadline:
                return r
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0))

    def status(self, meter: str) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.url}/v1/meters/{meter}/readings",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        r.raise_for_status()
        return list(r.json()["readings"])

    def wait_final(self, count: int, timeout: float = 30.0) -> dict[str, int]:
        def done() -> dict[str, int] | None:
            counts = self.store.state_counts()
            final = counts.get("confirmed", 0) + counts.get("rejected", 0)
            return counts if final >= count else None

        return wait_until(done, timeout, f"{count} readings confirmed or rejected")


def start_oracle(
    tmp: Path,
    rpc_url: str,
    deployments_dir: Path,
    key: bytes,
    meters: list[str],
    peer_names: Sequence[str] = (),
    **overrides: Any,
) -> Iterator[RunningOracle]:
    """An oracle on its own loopback port. `peer_names`: peers issued a credential for
    POST /v1/attestations before the app starts (quorum mode needs them)."""
    settings = OracleSettings(
        rpc_url=rpc_url,
        deployments_dir=deployments_dir,
        db_path=tmp / "oracle.db",
        **{"batch_max_age_s": 0.2, "poll_interval_s": 0.05, **overrides},
    )
    store = Store(settings.db_path)
    oracle = Oracle(settings, store, Chain(rpc_url, deployments_dir), Signer(key, "test key"))
    oracle.connect()
    token = store.add_gateway("gw-1")
    store.bind("gw-1", meters)
    issued = {name: store.add_peer(name) for name in peer_names}
    server = ServerThread(create_app(oracle)).start()
    try:
        yield RunningOracle(oracle, server, token, issued)
    finally:
        server.stop()
        store.close()


class OracleProcess:
    """`python -m oracle serve` as a subprocess (so it can be killed with SIGKILL)."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        from oracle.devchain import free_port

        self.env = env
        self.port = port or free_port()
        self.log_path = log_path
        self.proc: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **extra_env: str) -> OracleProcess:
        import subprocess
        import sys

        env = {**self.env, **extra_env}
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oracle", "serve", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def up() -> bool:
            if self.proc.poll() is not None:
                return True
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return True
            except httpx.HTTPError:
                return False

        wait_until(up, 60, "oracle subprocess to listen")
        return self

    def wait_exit(self, timeout: float = 60) -> int:
        return int(self.proc.wait(timeout))

    def kill9(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except Exception:  # noqa: BLE001 - last resort in test teardown
                self.proc.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _lookup_pending(r: httpx.Response) -> bool:
    return r.status_code == 503 and "meter lookup pending" in r.text


def post(url: str, token: str, readings: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/readings",
        json={"readings": readings},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def recorded_counts(w3: Any, registry: str) -> dict[tuple[bytes, int], int]:
    """How many times each (meter, start) was recorded on chain (from ReadingRecorded logs)."""
    from oracle.chain import READING_RECORDED

    logs = w3.eth.get_logs(
        {
            "address": registry,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": ["0x" + READING_RECORDED.hex()],
        }
    )
    counts: dict[tuple[bytes, int], int] = {}
    for entry in logs:
        key = (bytes(entry["topics"][1]), int.from_bytes(bytes(entry["data"])[:32], "big"))
        counts[key] = counts.get(key, 0) + 1
    return counts
