"""A newcomer's path, followed as the README says: mistakes end in one clear line, never in a
traceback or a record of a chain that is gone."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

PROJECT = Path(__file__).resolve().parent.parent
pytest_plugins = ["market_support"]  # jpyt, market: the devnet's mock token and its market
TOKYO = ZoneInfo("Asia/Tokyo")
CHROMIUM = Path("/usr/bin/chromium")


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


def test_market_writes_ask_first(market_record, accounts, tmp_path):
    """Without --yes every market write shows what it will do and asks; a no sends nothing."""
    nonces = [accounts[i].nonce for i in (1, 3, 4)]
    for args, shows in (
        (
            ["list", "--cert", "1:0.5", "--price", "3", "--account", "TEST::3"],
            "certificate 1: 0.500",
        ),
        (["buy", "1", "0.5", "--account", "TEST::4"], "Buy 0.500 ZCV of listing #1"),
        (["cancel", "1", "--account", "TEST::3"], "Cancel listing #1"),
        (["deposit", "--cert", "1:all", "--account", "TEST::3"], "certificate 1: all"),
        (["withdraw", "--cert", "1:0.1", "--account", "TEST::3"], "Withdraw certificate 1"),
        (["pay-statement", "2026-11-X", "--account", "TEST::3"], "Pay statement 2026-11-X"),
        (["post-statement", "2026-11-X", "TEST::3", "5", "--account", "TEST::1"], "5 JPYT due"),
        (["confirm-zcv", "2026-11-X", "--account", "TEST::1"], "paid in ZCV"),
    ):
        said_no = _market_cli(tmp_path, *args, answer="n\n")
        assert said_no.exit_code == 1 and shows in said_no.stderr, (args, said_no.stderr)
    assert [accounts[i].nonce for i in (1, 3, 4)] == nonces


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


def test_gateway_bind_warns_about_a_deactivated_meter(oracle_cli, registered, operator):
    """Known but deactivated: bound (the operator may reactivate it), with a warning line."""
    from zcx.ids import meter_id

    registered.members.setMeterActive(meter_id("ALICE-PV"), False, sender=operator)
    assert oracle_cli("gateways", "add", "tanaka-hems").exit_code == 0
    bound = oracle_cli("gateways", "bind", "tanaka-hems", "ALICE-PV")
    assert bound.exit_code == 0 and "meter 'ALICE-PV' is deactivated" in bound.stderr
    assert json.loads(oracle_cli("gateways", "list", "--json").stdout)[0]["meters"] == ["ALICE-PV"]


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


# ---------------------------------------------------------------------------- reports

ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:home|root|tmp|work|Users|var|mnt|private)/")


@pytest.fixture
def audited(registered, submit, alice, bob, carol, epoch, chain, tmp_path):
    """The audit tests' standard scenario (readings of ONE day, claims, a transfer, a payment,
    two retirements), audited, exported and reported with times in Asia/Tokyo."""
    from audit_support import deployment_of, standard_scenario

    from zcx import domain
    from zcx.audit.events import abis_from_manifest
    from zcx.audit.run import audit, write_outputs

    standard_scenario(registered, submit, alice, bob, carol, epoch)
    domain.set_display_zone("Asia/Tokyo")
    try:
        result = audit(chain.provider.web3, deployment_of(registered, chain), abis_from_manifest())
        written = write_outputs(result, tmp_path / "audit", formats=("csv",), trails=[1])
    finally:
        domain.set_display_zone(None)  # back to the default (UTC) for the other tests
    return result, written


def test_audit_exports_carry_real_transaction_hashes_and_iso_times(audited, chain):
    import pandas as pd

    result, written = audited
    web3 = chain.provider.web3
    for name in ("readings", "batches", "claims", "certificates", "transfers", "retirements"):
        frame = pd.read_csv(written["exports"] / f"{name}.csv")
        assert len(frame), name
        assert frame["tx_hash"].str.fullmatch(r"0x[0-9a-f]{64}").all(), name
        for row in frame.drop_duplicates("tx_hash").itertuples():
            receipt = web3.eth.get_transaction_receipt(row.tx_hash)
            assert receipt["blockNumber"] == row.block, (name, row.tx_hash)
        times = frame["timestamp"] if "timestamp" in frame else None
        iso = frame["time"]
        assert iso.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d\+09:00").all(), name
        if times is not None:
            assert list(pd.to_datetime(iso).map(lambda t: int(t.timestamp()))) == [
                t // 60 * 60 for t in times
            ]
    readings = pd.read_csv(written["exports"] / "readings.csv")
    first = readings.iloc[0]
    assert first["start_iso"] == datetime.fromtimestamp(first["start"], TOKYO).isoformat(
        timespec="minutes"
    )
    retirements = pd.read_csv(written["exports"] / "retirements.csv")
    assert retirements["consumption_start_iso"].str.endswith("+09:00").all()


def test_audit_charts_draw_one_day_and_the_retirements(audited):
    from zcx.audit.report import daily_energy_figure, issuance_figure

    result, _ = audited
    ledger = result.ledger
    fig = daily_energy_figure(ledger, TOKYO)
    bars = fig.axes[0].patches
    assert len(bars) == 4  # one day, PQ1..PQ4: bars, visible where a one-point line is not
    heights = [b.get_height() for b in bars]
    assert heights[0] == pytest.approx(ledger.readings["pq1"].sum() / 1000)
    assert all(h > 0 for h in heights[:3])

    lines = {line.get_label().split(":")[0]: line for line in issuance_figure(ledger).axes[0].lines}
    assert set(lines) == {"issued", "retired"}
    retired = lines["retired"].get_ydata()
    assert retired[0] == 0 and len(retired) >= 3  # from nothing to the last block: a line
    assert retired[-1] == pytest.approx(ledger.retirements["units"].astype(float).sum() / 1000)
    assert lines["issued"].get_ydata()[-1] == pytest.approx(
        ledger.certificates["units"].astype(float).sum() / 1000
    )


def test_audit_html_reads_well(audited):
    result, written = audited
    page = written["html"].read_text()
    directory = written["html"].parent
    assert not ABSOLUTE_PATH.search(page)
    for link in re.findall(r"href='([^']+\.csv)'", page):
        assert (directory / link).is_file(), link
    assert page.count("class='table-box'") == page.count("<table>") >= 5
    assert "<li><span class='badge PASS'>PASS</span>Supply + retired = issued" in page
    assert "FAIL</span>" not in page
    assert "Generated (PQ1, Wh)" in page and ">pq1_generated_wh<" not in page
    assert re.search(r">\d{1,3}(,\d{3})+<", page)  # thousands separators in the tables
    assert re.search(r">\d{4}-\d\d-\d\dT\d\d:\d\d\+09:00<", page)  # local time, with its offset
    assert "Times are ISO 8601 in Asia/Tokyo" in page
    assert "href='../data/readings.csv'" in page  # the full exports, linked relatively


def test_report_writer_formats_for_people(tmp_path):
    import pandas as pd

    from zcx.report import Report, plain_header, scrub_paths

    frame = pd.DataFrame(
        {
            "certificate_id": [1234],
            "units": [1234567],
            "zcv_retired": [1.5],
            "period_start": [1_764_547_200],
            "tx": [5],
            "note": ["/root/secret/x.csv"],
        }
    )
    report = Report("t", tmp_path, zone=TOKYO)
    report.add_checks({"a holds": True, "b holds": False, "c looked at": "WARN"})
    report.add_table("t", frame, "A table")
    report.add_table("empty", frame.head(0), "Nothing yet")
    page = report.write().read_text()
    assert ">1234<" in page and ">1,234,567<" in page and ">1.5<" in page
    assert ">2025-12-01T09:00+09:00<" in page and ">5<" not in page  # internal key hidden
    assert "<p>None.</p>" in page  # an empty table says so, not a bare header row
    assert "badge FAIL" in page and "badge WARN" in page and "badge PASS" in page
    assert "/root/" not in page and "x.csv" in page
    assert plain_header("zcv_retired") == "ZCV retired" and plain_header("sold_kwh") == "Sold (kWh)"
    assert scrub_paths("see /tmp/pytest-1/out/a.csv now") == "see a.csv now"
    assert pd.read_csv(tmp_path / "t.csv")["period_start"].tolist() == [1_764_547_200]


@pytest.mark.timeout(120)
def test_audit_html_fits_1280_px(audited, tmp_path):
    """Chromium at 1,280 px: the page never scrolls sideways (wide tables scroll inside their
    own box); the screenshot is kept next to the report for a person to look at."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    _, written = audited
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(written["html"].as_uri())
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280
            boxes = page.evaluate(
                "[...document.querySelectorAll('.table-box')].map(b => b.clientWidth)"
            )
            assert boxes and max(boxes) <= 1280
            images = page.evaluate(
                "[...document.images].map(i => i.complete && i.naturalWidth > 0)"
            )
            assert images and all(images)
            page.screenshot(
                path=str(written["html"].with_name("screenshot-1280.png")), full_page=True
            )
        finally:
            browser.close()


# ---------------------------------------------------------------------------- one zone for days


def test_retire_dates_and_statement_months_count_days_in_the_same_zone():
    """README: `retire --from 2026-11-01 --to 2026-11-30`, then `zcx statements beneficiary
    --month 2026-11`. With ZCX_TZ both count days in that zone, so the month's statement finds
    the retirement (before, the dates were UTC days and the month Japanese: Dec 1 00:00 UTC is
    Dec 1 09:00 in Tokyo, outside November, and the statement found nothing)."""
    from zcx import domain
    from zcx.holder import parse_time
    from zcx.statements.chain import month_bounds

    domain.set_display_zone("Asia/Tokyo")
    try:
        period = parse_time("2026-11-01"), parse_time("2026-11-30", end=True)
        naive = parse_time("2026-11-20T10:00")
    finally:
        domain.set_display_zone(None)
    assert period == month_bounds("2026-11", "Asia/Tokyo")
    assert naive == int(datetime(2026, 11, 20, 10, tzinfo=TOKYO).timestamp())
    assert parse_time("2026-11-01") == int(
        datetime(2026, 11, 1, tzinfo=ZoneInfo("UTC")).timestamp()
    )


def test_audit_check_list_says_pass_warn_or_fail_per_check():
    from zcx.audit.findings import violation, warning
    from zcx.audit.report import CHECK_SENTENCES, check_list

    found = [
        violation("supply_plus_retired_equals_issued", "supply 5 + retired 1 != issued 7"),
        warning("solar_at_night", "ALICE-PV generated 300 Wh at 02:00"),
        warning("reading_without_source", "no gateway row"),  # a cross-check: listed as found
    ]
    checks = check_list(found, market=True)
    assert checks["Supply + retired = issued (invariant 3)"] == "FAIL"
    assert checks["No solar generation at night (plausibility)"] == "WARN"
    assert checks["reading without source"] == "WARN"
    assert checks["The market holds exactly what its books account for"] == "PASS"
    assert not any("Demand-response" in name for name in checks)  # no DR contract, no DR line
    assert sum(v == "PASS" for v in checks.values()) == len(CHECK_SENTENCES) - 2 + 1
