"""Local helpers for tests, benchmarks and demos: a free loopback port, an Anvil subprocess that
can be stopped and restarted with its state, a web3 deployment of the registries from the
compiled manifest, and an in-process uvicorn server. Nothing here is used by the service."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import uvicorn
from eth_utils import to_checksum_address
from web3 import Web3

from oracle.chain import load_abis, load_bytecode, wait_for_rpc
from zcx import deployments
from zcx.deployments import Deployment

ROOT = Path(__file__).resolve().parent.parent
HOUSEHOLD, SOLAR = 0, 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def anvil_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "anvil"
    found = str(local) if local.exists() else shutil.which("anvil")
    if not found:
        raise FileNotFoundError("anvil not found: run `npm ci` (package @foundry-rs/anvil)")
    return found


class Anvil:
    """An Anvil subprocess on 127.0.0.1; `stop()` dumps its state, `start()` reloads it."""

    def __init__(self, state: Path, port: int | None = None, extra: Sequence[str] = ()) -> None:
        self.state = state
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Anvil:
        cmd = [
            anvil_binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--state",
            str(self.state),
            "--silent",
            "--gas-limit",
            "30000000",
            *self.extra,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_rpc(self.url)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        self.proc = None


def rpc(url: str, method: str, params: list[Any]) -> Any:
    w3 = Web3(Web3.HTTPProvider(url))
    return w3.provider.make_request(method, params)  # type: ignore[arg-type]


def deploy_registries(
    url: str, signers: Sequence[str], quorum: int, interval: int = 1800, margin_bps: int = 1000
) -> tuple[Deployment, Web3]:
    """Deploys MemberRegistry and GenerationRegistry with Anvil's unlocked accounts 0 (admin)
    and 1 (operator); returns the Deployment record (not saved) and the Web3 handle."""
    w3 = Web3(Web3.HTTPProvider(url))
    accounts = list(w3.eth.accounts)
    admin, operator = accounts[0], accounts[1]
    abis = load_abis()
    first = int(w3.eth.block_number) + 1

    def deploy(name: str, *args: Any) -> str:
        factory = w3.eth.contract(abi=abis[name], bytecode=load_bytecode(name))
        tx = factory.constructor(*args).transact({"from": admin})
        return str(w3.eth.wait_for_transaction_receipt(tx)["contractAddress"])

    members = deploy("MemberRegistry", admin, operator)
    registry = deploy(
        "GenerationRegistry",
        admin,
        members,
        [to_checksum_address(s) for s in signers],
        quorum,
        interval,
        margin_bps,
    )
    block = w3.eth.get_block(first)
    record = Deployment(
        chain_id=int(w3.eth.chain_id),
        network="ethereum:local",
        deployment_block=first,
        deployment_block_hash=bytes(block["hash"]).hex(),
        contracts={"MemberRegistry": members, "GenerationRegistry": registry},
        roles={"admin": admin, "operator": operator, "oracle_signers": list(signers)},
        config={"quorum": quorum, "interval_seconds": interval, "capacity_margin_bps": margin_bps},
    )
    return record, w3


def register_meters(
    w3: Web3,
    deployment: Deployment,
    owner: str,
    labels: Sequence[str],
    capacity_w: int,
    commissioned_at: int,
) -> None:
    """Registers `owner` as a household (if needed) and the meters (Anvil account 1 operates)."""
    from zcx.ids import meter_id

    operator = list(w3.eth.accounts)[1]
    members = w3.eth.contract(
        address=to_checksum_address(deployment.contracts["MemberRegistry"]),
        abi=load_abis()["MemberRegistry"],
    )
    last = None
    if not members.functions.isMember(owner).call():
        tx = members.functions.registerMember(owner, "member", HOUSEHOLD).transact(
            {"from": operator}
        )
        w3.eth.wait_for_transaction_receipt(tx)
    for label in labels:
        last = members.functions.registerMeter(
            meter_id(label), owner, SOLAR, capacity_w, "TEPCO-13", commissioned_at
        ).transact({"from": operator, "gas": 300_000})
    if last is not None:
        w3.eth.wait_for_transaction_receipt(last)


def save_deployment(record: Deployment, directory: Path) -> Path:
    return deployments.save(record, directory)


def deployment_dict(record: Deployment) -> dict[str, Any]:
    return asdict(record)


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1 in a background thread (lifespan runs the submitter)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        from oracle.http import server_config

        self.port = port or free_port()
        oracle = getattr(getattr(app, "state", None), "oracle", None)
        settings = oracle.settings if oracle is not None else None
        self.server = uvicorn.Server(server_config(app, "127.0.0.1", self.port, settings))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def oracle_env(
    db: Path, rpc_url: str, deployments_dir: Path, key_hex: str, **extra: str
) -> dict[str, str]:
    """Environment for an oracle subprocess (`python -m oracle serve`)."""
    env = dict(os.environ)
    env.update(
        {
            "ZCX_ORACLE_DB_PATH": str(db),
            "ZCX_ORACLE_RPC_URL": rpc_url,
            "ZCX_ORACLE_DEPLOYMENTS_DIR": str(deployments_dir),
            "ZCX_ORACLE_DEV_PRIVATE_KEY": key_hex,
        }
    )
    env.update(extra)
    return env
