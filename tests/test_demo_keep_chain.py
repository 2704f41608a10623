"""`ape run demo --keep-chain --portal` leaves the demo's chain and the portal running, prints
the portal's address and exports the members' accounts (the issue's "done when")."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from web3 import Web3

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


def _stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # each leads its own session
    except ProcessLookupError:
        pass


def test_keep_chain_and_portal_stay_up_and_accounts_work(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "APE_DISABLE_ANALYTICS": "1"}
    env.pop("APE_FOUNDRY_HOST", None)
    result = subprocess.run(
        [
            "ape",
            "run",
            "demo",
            "--members",
            "6",
            "--days",
            "1",
            "--keep-chain",
            "--portal",
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    text = result.stdout + result.stderr
    pids = [int(p) for p in re.findall(r"\(?(?:Anvil )?pid (\d+)", text)]
    try:
        assert result.returncode == 0, text[-3000:]
        chain_url = re.search(r"Chain kept running: (http://127\.0\.0\.1:\d+)", text).group(1)
        portal_url = re.search(r"Portal: (http://127\.0\.0\.1:\d+/)", text).group(1)
        assert len(pids) == 2
        w3 = Web3(Web3.HTTPProvider(chain_url))
        assert w3.eth.chain_id == 31337  # the chain outlived `ape run`
        assert httpx.get(portal_url + "operator", timeout=30).status_code == 200

        record = json.loads((out / "accounts.json").read_text())
        assert record["rpc_url"] == chain_url and len(record["members"]) == 6
        member = record["members"][0]
        assert Account.from_key(member["private_key"]).address == member["address"]
        page = httpx.get(f"{portal_url}member/{member['address']}", timeout=30)
        assert page.status_code == 200 and member["name"] in page.text
        kinds = {"household", "public-facility", "business", "generator"}
        assert {m["kind"] for m in record["members"]} <= kinds  # the CLI's --kind words

        # `zcx` works on the kept chain as docs/demo.md says: the devnet faucet funds a member.
        zcx_env = {**env, "ZCX_DEPLOYMENTS_DIR": record["deployments_dir"], "ZCX_YES": "1"}
        faucet = subprocess.run(
            ["zcx", "market", "faucet", member["address"], "500", "--json"]
            + ["--rpc-url", chain_url],
            cwd=ROOT,
            env=zcx_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert faucet.returncode == 0, faucet.stderr
        assert json.loads(faucet.stdout)["amount"] == "500.00"
    finally:
        for pid in pids:
            _stop(pid)
