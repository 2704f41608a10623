"""The auditor toolkit on a clean chain: no violation, exact Fig. 6 ledger, trail, exports,
pagination, and both entry points."""

from __future__ import annotations

import pandas as pd
import pytest
from audit_support import RpcProxy, deployment_of, standard_scenario
from click.testing import CliRunner

from zcx import deployments
from zcx.audit import AuditConfig, audit, write_outputs
from zcx.audit.cli import cli
from zcx.audit.events import abis_from_ape
from zcx.audit.report import certificate_trail, members_ledger


@pytest.fixture(scope="module")
def abis():
    return abis_from_ape()


@pytest.fixture
def scenario(registered, submit, alice, bob, carol, epoch):
    return standard_scenario(registered, submit, alice, bob, carol, epoch)


def _w3(chain):
    return chain.provider.web3


def test_clean_run_finds_no_violation(registered, scenario, chain, abis, alice, bob, carol):
    result = audit(_w3(chain), deployment_of(registered, chain), abis)
    assert result.violations == [], "\n".join(map(str, result.violations))
    ledger = result.ledger
    assert len(ledger.readings) == 8 + 2
    assert list(ledger.rejected["error"]) == ["RegistryReadingOverlaps"]
    assert list(ledger.rejected["index"]) == [0]
    assert len(ledger.batches) == 2
    assert list(ledger.certificates["certificate_id"]) == [1, 2, 3]
    assert len(ledger.retirements) == 2 and len(ledger.payments) == 1
    # Only the deployment's own signer-set events: no changes, nothing at night, no outlier.
    assert result.warnings == []

    fig6 = members_ledger(ledger).set_index("account")
    alice_pv = sum(1200 + 50 * i for i in range(4)) + 1500
    assert fig6.loc[alice.address, "pq1_generated_wh"] == alice_pv
    assert fig6.loc[alice.address, "coins_purchased"] == alice_pv
    assert fig6.loc[alice.address, "coins_balance"] == alice_pv - 2000
    assert fig6.loc[bob.address, "coins_used"] == 300
    assert fig6.loc[bob.address, "coins_amortized"] == 1000
    assert fig6.loc[carol.address, "coins_amortized"] == 200
    for account in (alice.address, bob.address, carol.address):
        view = registered.zcv.counters(account)
        assert tuple(
            fig6.loc[account, ["coins_purchased", "coins_used", "coins_amortized", "coins_balance"]]
        ) == tuple(view)


def test_contracts_the_audit_does_not_cover_are_ignored(registered, scenario, chain, abis):
    """`ape run deploy` also records the market and a mock payment token; the audit of the core
    contracts must neither fail on them nor change its findings."""
    recorded = deployment_of(registered, chain)
    recorded.contracts["ZcvMarket"] = "0x" + "11" * 20
    recorded.contracts["MockYenToken"] = "0x" + "22" * 20
    result = audit(_w3(chain), recorded, abis)
    assert result.violations == []
    assert len(result.ledger.readings) == 8 + 2


def test_certificate_trail_follows_every_hop(registered, scenario, chain, abis, alice, bob, carol):
    ledger = audit(_w3(chain), deployment_of(registered, chain), abis).ledger
    # Spend order takes each holder's largest lot first: Alice's 2000-unit transfer gives Bob
    # 2000 of certificate 1; Bob pays Carol 300 and retires 1000 from his own certificate 3
    # (66,000 units); Carol retires 200 of certificate 3 (retirement 2).
    trail = certificate_trail(ledger, 2)
    consumed = trail["consumed"]
    assert list(consumed["certificate_id"]) == [3] and list(consumed["units_retired"]) == [200]
    assert consumed.iloc[0]["meter"] == "BOB-PV" and consumed.iloc[0]["owner"] == bob.address
    hops = trail["hops"]
    steps = [(h.hop, h["from"], h["to"], h.units) for _, h in hops.iterrows()]
    zero = "0x0000000000000000000000000000000000000000"
    assert steps == [
        ("issued", zero, bob.address, 66000),
        ("moved", bob.address, carol.address, 300),
        ("retired", bob.address, zero, 1000),
        ("retired", carol.address, zero, 200),
    ]
    assert [int(c) for c in registered.zcv.retirement(2).certificateIds] == [3]
    with pytest.raises(KeyError, match="no retirement 9"):
        certificate_trail(ledger, 9)


def test_exports_and_html_report(registered, scenario, chain, abis, tmp_path):
    result = audit(_w3(chain), deployment_of(registered, chain), abis)
    written = write_outputs(result, tmp_path, trails=[1])
    html = written["html"].read_text()
    assert "Verdict: PASS" in html and "Fig. 6" in html and "daily_energy.png" in html
    readings = pd.read_csv(tmp_path / "data" / "readings.csv")
    assert len(readings) == 10 and set(readings["meter"]) == {"ALICE-PV", "BOB-PV"}
    fig6 = pd.read_csv(tmp_path / "data" / "members_ledger.csv")
    assert {"coins_purchased", "coins_used", "coins_amortized", "coins_balance"} <= set(
        fig6.columns
    )
    assert (tmp_path / "data" / "trail_1_hops.csv").is_file()


def test_parquet_export(registered, scenario, chain, abis, tmp_path):
    result = audit(_w3(chain), deployment_of(registered, chain), abis)
    write_outputs(result, tmp_path, formats=("parquet",), html=False, trails=[1])
    readings = pd.read_parquet(tmp_path / "data" / "readings.parquet")
    assert len(readings) == 10 and set(readings["meter"]) == {"ALICE-PV", "BOB-PV"}
    batches = pd.read_parquet(tmp_path / "data" / "batches.parquet")
    assert len(batches) == 2
    assert (tmp_path / "data" / "trail_1_hops.parquet").is_file()


def test_pagination_smaller_than_event_count(registered, scenario, chain, abis):
    dep = deployment_of(registered, chain)
    one_page = audit(_w3(chain), dep, abis, page_blocks=10**6)
    paged = audit(_w3(chain), dep, abis, page_blocks=2)
    events = one_page.ledger.read_stats["logs"]
    assert one_page.ledger.read_stats["pages"] == 1
    assert paged.ledger.read_stats["pages"] > 5 and paged.ledger.read_stats["pages"] < events
    assert paged.ledger.read_stats["logs"] == events
    for name, frame in one_page.ledger.frames().items():
        pd.testing.assert_frame_equal(frame, paged.ledger.frames()[name], obj=name)
    assert paged.violations == []


def test_refused_pages_are_split(registered, scenario, chain, abis):
    """A provider capping eth_getLogs at 3 blocks: the reader halves pages until they pass."""
    with RpcProxy(chain.provider.uri, max_log_blocks=3) as proxy:
        from zcx.audit.cli import web3_for

        result = audit(web3_for(proxy.url), deployment_of(registered, chain), abis, page_blocks=64)
    assert proxy.refused > 0 and result.ledger.read_stats["retries"] == proxy.refused
    assert len(result.ledger.readings) == 10 and result.violations == []


def test_cli_against_rpc_url(registered, scenario, chain, tmp_path):
    dep = deployment_of(registered, chain)
    deployments.save(dep, tmp_path / "deployments")
    runner = CliRunner()
    args = [
        "run",
        "--rpc-url",
        chain.provider.uri,
        "--deployments-dir",
        str(tmp_path / "deployments"),
        "--out",
        str(tmp_path / "out"),
        "--page-blocks",
        "4",
        "--trail",
        "1",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "PASS: 0 violations" in result.output
    assert (tmp_path / "out" / "report" / "index.html").is_file()
    assert (tmp_path / "out" / "data" / "trail_1_consumed.csv").is_file()
    # A trusted set that lacks one of the oracles that signed: violations, exit 1.
    trusted = ["--trusted-signer", registered.registry.signers()[2]]
    failed = runner.invoke(cli, [*args, "--no-export", *trusted])
    assert failed.exit_code == 1 and "trusted_signers" in failed.output, failed.output


def test_help_documents_every_option():
    runner = CliRunner()
    out = runner.invoke(cli, ["run", "--help"]).output
    for option in (
        "--rpc-url",
        "--page-blocks",
        "--csv",
        "--oracle-store",
        "--trusted-signer",
        "--capacity-margin-bps",
        "--trail",
        "--format",
        "--out",
    ):
        assert option in out
    assert runner.invoke(cli, ["trail", "--help"]).exit_code == 0


def test_audit_config_defaults_are_documented():
    config = AuditConfig()
    assert config.capacity_margin_bps == 1000 and config.peer_factor == 3.0


def test_trail_with_a_mock_token_recorded_and_clean_errors(registered, scenario, chain, tmp_path):
    """Optional contracts in the record (the devnet's mock payment token) are not read; a chain
    without a deployment, a missing retirement or a dead node give one line and exit 1."""
    dep = deployment_of(registered, chain)
    dep.contracts["MockYenToken"] = registered.zcv.address  # any address: it must not be read
    deployments.save(dep, tmp_path / "deployments")
    runner = CliRunner()
    common = ["--rpc-url", chain.provider.uri, "--deployments-dir", str(tmp_path / "deployments")]
    ok = runner.invoke(cli, ["trail", "1", *common])
    assert ok.exit_code == 0, ok.output
    for args, says in (
        (["trail", "99", *common], "no retirement 99"),
        (
            ["trail", "1", "--rpc-url", chain.provider.uri, "--deployments-dir", str(tmp_path)],
            "no ZCX deployment",
        ),
        (
            ["run", "--rpc-url", chain.provider.uri, "--deployments-dir", str(tmp_path)],
            "no ZCX deployment",
        ),
        (["trail", "1", "--rpc-url", "http://127.0.0.1:9/secret-key"], "no JSON-RPC node"),
    ):
        failed = runner.invoke(cli, args)
        assert failed.exit_code == 1, failed.output
        assert says in failed.output and "Traceback" not in failed.output
        assert "secret-key" not in failed.output
