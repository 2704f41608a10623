"""A newcomer's path, followed as the README says: mistakes end in one clear line, never in a
traceback or a record of a chain that is gone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
pytest_plugins = ["market_support"]  # jpyt, market: the devnet's mock token and its market


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(180)
def test_deploy_refuses_apes_throwaway_anvil(tmp_path):
    """No node at the host: Ape would start a temporary Anvil; deploy refuses and writes nothing."""
    env = {
        **os.environ,
        "APE_FOUNDRY_HOST": f"http://127.0.0.1:{_free_port()}",
        "ZCX_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
    }
    ape = Path(sys.executable).with_name("ape")
    run = subprocess.run(
        [str(ape), "run", "deploy", "--network", "ethereum:local:foundry"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "anvil --port 8545" in out and "Traceback" not in out
    assert not (tmp_path / "deployments").exists()


def test_deployment_records_live_under_the_working_directory():
    from zcx import deployments

    assert not deployments.DEFAULT_DIR.is_absolute()
    assert "site-packages" not in str(deployments.path_for(1).resolve())


def test_a_bad_network_is_a_usage_error():
    """Exit 2 with a one-line hint, before any connection (so no retries to any public RPC)."""
    run = subprocess.run(
        [str(Path(sys.executable).with_name("zcx")), "holder", "balance", "TEST::3"]
        + ["--network", "ethereum:nowhere:foo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "unknown network 'ethereum:nowhere:foo'" in run.stderr
    assert "Traceback" not in run.stderr


# ---------------------------------------------------------------------------- the devnet faucet

NEWCOMER = "TEST::4"


@pytest.fixture
def market_record(zcx, market, jpyt, chain, tmp_path):
    """A deployment record like `ape run deploy` writes on the devnet: core contracts, market
    and its mock payment token (MINTER_ROLE with the operator, test account 1)."""
    from zcx import deployments
    from zcx.deployments import Deployment

    contracts = {**zcx.addresses(), "ZcvMarket": str(market.address)}
    contracts["MockYenToken"] = str(jpyt.address)
    record = Deployment(
        chain.chain_id, "ethereum:local:foundry", 0, chain.blocks[0].hash.hex(), contracts
    )
    deployments.save(record, tmp_path)
    return record


def _market_cli(tmp_path, *args: str, answer: str | None = None):
    from click.testing import CliRunner

    from zcx.market_cli import cli

    env = {"ZCX_DEPLOYMENTS_DIR": str(tmp_path), "ZCX_YES": None, "ZCX_NETWORK": None}
    return CliRunner(mix_stderr=False).invoke(cli, list(args), env=env, input=answer)


def test_faucet_mints_the_mock_token_on_the_devnet(market_record, jpyt, accounts, tmp_path):
    newcomer = accounts[4]
    before = int(jpyt.balanceOf(newcomer))
    said_no = _market_cli(tmp_path, "faucet", NEWCOMER, "10,000", answer="n\n")
    assert said_no.exit_code == 1 and "Mint 10,000.00 JPYT (devnet mock) to" in said_no.stderr
    assert int(jpyt.balanceOf(newcomer)) == before  # nothing sent without a yes

    done = _market_cli(tmp_path, "faucet", NEWCOMER, "10000", "--yes", "--json")
    assert done.exit_code == 0, done.stderr + done.stdout
    out = json.loads(done.stdout)
    assert int(jpyt.balanceOf(newcomer)) == before + 10_000 * 10**18
    assert out["to"] == newcomer.address and out["token"] == "JPYT"
    assert out["amount_base_units"] == str(10_000 * 10**18)
    assert len(out["txn_hash"]) == 66 and out["block"] > 0
    receipt = accounts.provider.get_receipt(out["txn_hash"])
    assert receipt.receiver == jpyt.address  # the real mint transaction, signed by the minter

    plain = _market_cli(tmp_path, "faucet", newcomer.address, "0.5", "--yes")
    assert plain.exit_code == 0 and "Minted 0.50 JPYT to" in plain.stdout


def test_faucet_refuses_bad_amounts_and_a_non_minter(market_record, jpyt, accounts, tmp_path):
    before = int(jpyt.balanceOf(accounts[4]))
    for amount, why in (("0", "positive"), ("ten", "not a number"), ("1e-30", "18 decimals")):
        bad = _market_cli(tmp_path, "faucet", NEWCOMER, amount, "--yes")
        assert bad.exit_code == 2 and "AMOUNT" in bad.stderr and why in bad.stderr, bad.stderr
    intruder = _market_cli(tmp_path, "faucet", NEWCOMER, "5", "--yes", "--account", "TEST::4")
    assert intruder.exit_code == 1 and "lacks MINTER_ROLE" in intruder.stderr, intruder.stderr
    assert "Traceback" not in intruder.stderr
    assert int(jpyt.balanceOf(accounts[4])) == before


def test_faucet_refuses_a_deployment_without_the_mock(market_record, tmp_path):
    from zcx import deployments

    record = deployments.load(market_record.chain_id, tmp_path)
    del record.contracts["MockYenToken"]  # deployed with --payment-token: a real token
    deployments.save(record, tmp_path)
    out = _market_cli(tmp_path, "faucet", NEWCOMER, "5", "--yes")
    assert out.exit_code == 1, out.stdout
    assert "no mock payment token" in out.stderr and out.stderr.count("\n") == 1


def test_faucet_refuses_any_other_chain(tmp_path):
    """A real Anvil with chain id 1337 holding a MockYenToken: the installed `zcx` attaches
    to it and refuses before signing anything; the token's supply stays 0."""
    from web3 import Web3

    from oracle.chain import MANIFEST
    from oracle.devchain import Anvil
    from zcx import deployments
    from zcx.deployments import Deployment

    anvil = Anvil(tmp_path / "state.json", extra=["--chain-id", "1337"]).start()
    try:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        deployer = w3.eth.accounts[0]
        mock = json.loads(MANIFEST.read_text())["contractTypes"]["MockYenToken"]
        factory = w3.eth.contract(abi=mock["abi"], bytecode=mock["deploymentBytecode"]["bytecode"])
        receipt = w3.eth.wait_for_transaction_receipt(
            factory.constructor(deployer, deployer).transact({"from": deployer})
        )
        token = w3.eth.contract(address=receipt.contractAddress, abi=factory.abi)
        block = w3.eth.get_block(receipt.blockNumber)
        record = Deployment(
            1337,
            "ethereum:local:foundry",
            receipt.blockNumber,
            bytes(block["hash"]).hex(),
            {"MockYenToken": receipt.contractAddress},
        )
        deployments.save(record, tmp_path / "deployments")
        run = subprocess.run(
            [str(Path(sys.executable).with_name("zcx")), "market", "faucet", deployer, "5"]
            + ["--yes", "--network", "ethereum:local:foundry", "--rpc-url", anvil.url],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "ZCX_DEPLOYMENTS_DIR": str(tmp_path / "deployments")},
        )
        assert run.returncode == 1, run.stdout + run.stderr
        assert "only on the local devnet (chain id 31337); this is chain 1337" in run.stderr
        assert "Traceback" not in run.stderr
        assert token.functions.totalSupply().call() == 0
    finally:
        anvil.stop()


def test_faucet_rules_without_a_chain():
    from zcx.faucet import FaucetRefused, check_faucet_allowed, human_amount

    assert check_faucet_allowed(31337, {"MockYenToken": "0xabc"}) == "0xabc"
    with pytest.raises(FaucetRefused, match="this is chain 1"):
        check_faucet_allowed(1, {"MockYenToken": "0xabc"})
    with pytest.raises(FaucetRefused, match="no mock payment token"):
        check_faucet_allowed(31337, {"ZcvMarket": "0xdef"})
    assert human_amount(10**22, 18) == "10,000.00"
    assert human_amount(1234 * 10**15, 18) == "1.234"
    assert human_amount(5, 0) == "5"


# ---------------------------------------------------------------------------- oracle gateways


@pytest.fixture
def oracle_cli(registered, chain, tmp_path):
    """`zcx oracle` against the test chain (ALICE-PV and BOB-PV registered), with its own store
    and deployment record."""
    from click.testing import CliRunner
    from oracle_fixtures import write_deployment

    from oracle.cli import cli

    write_deployment(chain.provider.web3, registered.addresses(), tmp_path / "deployments")
    common = ["--db", str(tmp_path / "oracle.db"), "--rpc-url", chain.provider.uri]
    common += ["--deployments-dir", str(tmp_path / "deployments")]

    def run(*args: str):
        return CliRunner(mix_stderr=False).invoke(cli, [*common, *args])

    return run


def test_gateway_bind_refuses_a_meter_unknown_on_chain(oracle_cli):
    assert oracle_cli("gateways", "add", "tanaka-hems").exit_code == 0
    refused = oracle_cli("gateways", "bind", "tanaka-hems", "ALICE-PV", "TANAKA-PV")
    assert refused.exit_code == 1, refused.stdout
    assert "meter 'TANAKA-PV' is not registered in the MemberRegistry" in refused.stderr
    assert "zcx operator register-meter" in refused.stderr and "Traceback" not in refused.stderr
    # nothing stored, not even the known meter of the same request
    listed = json.loads(oracle_cli("gateways", "list", "--json").stdout)
    assert listed == [{"gateway": "tanaka-hems", "meters": []}]

    too_long = oracle_cli("gateways", "bind", "tanaka-hems", "M" * 33)
    assert too_long.exit_code == 2 and "at most 32" in too_long.stderr


def test_gateway_list_shows_the_bound_meters(oracle_cli):
    for name in ("tanaka-hems", "shoten-gw", "idle-gw"):
        assert oracle_cli("gateways", "add", name).exit_code == 0
    assert oracle_cli("gateways", "bind", "tanaka-hems", "ALICE-PV").exit_code == 0
    assert oracle_cli("gateways", "bind", "shoten-gw", "BOB-PV").exit_code == 0
    table = oracle_cli("gateways", "list").stdout.splitlines()
    assert table == [
        "idle-gw\t0 meters\t-",
        "shoten-gw\t1 meters\tBOB-PV",
        "tanaka-hems\t1 meters\tALICE-PV",
    ]
    listed = json.loads(oracle_cli("gateways", "list", "--json").stdout)
    assert {g["gateway"]: g["meters"] for g in listed}["tanaka-hems"] == ["ALICE-PV"]


def test_gateway_bind_without_the_chain_binds_nothing(registered, chain, tmp_path):
    """The node is down: one line naming it, exit 1, and the store is unchanged."""
    from click.testing import CliRunner
    from oracle_fixtures import write_deployment

    from oracle.cli import cli
    from oracle.store import Store

    write_deployment(chain.provider.web3, registered.addresses(), tmp_path / "deployments")
    common = ["--db", str(tmp_path / "oracle.db"), "--rpc-url", f"http://127.0.0.1:{_free_port()}"]
    common += ["--deployments-dir", str(tmp_path / "deployments")]
    runner = CliRunner(mix_stderr=False)
    assert runner.invoke(cli, [*common, "gateways", "add", "gw"]).exit_code == 0
    down = runner.invoke(cli, [*common, "gateways", "bind", "gw", "ALICE-PV"])
    assert down.exit_code == 1 and "cannot check the meters on chain, nothing bound" in down.stderr
    assert Store(tmp_path / "oracle.db").bindings() == {"gw": []}
