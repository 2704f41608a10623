"""Gateway delivery against the real oracle on loopback (tokens, bindings, duplicates, conflicts)
and the CSV files the oracle's importer reads."""

from __future__ import annotations

import csv
import json

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from eth_account import Account

from zcx import deployments
from zcx.deploy import deploy_all, describe
from zcx.ids import meter_id
from zcx.sim.cli import cli as sim_cli
from zcx.sim.community import build_community
from zcx.sim.gateway import (
    Gateway,
    GatewayClient,
    GatewayError,
    PostOutcome,
    deliver,
    write_broute_csv,
    write_csv,
)
from zcx.sim.oracle_process import OracleProcess, provision
from zcx.sim.simulate import aligned_window, simulate

ORACLE_KEY = "0x" + "5a" * 32  # a devnet-only oracle key for this test's own deployment


@pytest.fixture(scope="module")
def small_sim():
    members = build_community(3, 11)
    start, slots = aligned_window(int(pd.Timestamp("2025-05-01 06:00", tz="UTC").timestamp()), 1)
    return simulate(members, start, slots, 11)


def test_interval_csv_reads_back_through_the_oracle_parser(small_sim, tmp_path):
    from oracle.csv_import import read_interval_csv

    path = write_csv(small_sim.readings, tmp_path / "interval.csv")
    with path.open() as handle:
        parsed, issues = read_interval_csv(csv.DictReader(handle))
    assert issues == []
    got = [
        (r.meter, r.start, r.end, r.generated_wh, r.consumed_wh, r.sold_wh, r.purchased_wh)
        for r in parsed
    ]
    cols = ["meter_id", "start", "end", "generated_wh", "consumed_wh", "sold_wh", "purchased_wh"]
    assert got == [
        tuple(int(v) if k != "meter_id" else v for k, v in row.items())
        for row in small_sim.readings[cols].to_dict("records")
    ]
    assert "+09:00" in path.read_text().splitlines()[1]


def test_broute_registers_derive_the_same_intervals(small_sim, tmp_path):
    from oracle.csv_import import BRouteOptions, read_broute_csv

    path = write_broute_csv(small_sim.readings, tmp_path / "broute.csv", digits=6, seed=3)
    with path.open() as handle:
        parsed, issues, skipped, wraps = read_broute_csv(
            csv.DictReader(handle), BRouteOptions(unit_code=0x03, digits=6), 1800
        )
    assert issues == [] and skipped == 0
    assert wraps >= 1  # 6 digits of Wh wrap at 1 MWh: the generator's register does
    sim = small_sim.readings.set_index(["meter_id", "start"])
    assert len(parsed) == len(sim)
    for r in parsed:
        row = sim.loc[(r.meter, r.start)]
        assert (r.generated_wh, r.sold_wh, r.purchased_wh) == (
            row.generated_wh,
            row.sold_wh,
            row.purchased_wh,
        )
        # B-route has no battery register: consumption is derived without charge/discharge.
        assert r.consumed_wh == row.generated_wh + row.purchased_wh - row.sold_wh


@pytest.fixture(scope="module")
def live_oracle(accounts, chain, tmp_path_factory):
    """A deployment whose only oracle signer is ORACLE_KEY, one member, two gateways."""
    work = tmp_path_factory.mktemp("gateway")
    admin, operator = accounts[0], accounts[1]
    signer = Account.from_key(ORACLE_KEY)
    admin.transfer(signer.address, 10**18)
    contracts, first = deploy_all(admin, str(operator.address), [signer.address], 1)
    deployments.save(
        describe(
            contracts, first, "test", str(admin.address), str(operator.address), [signer.address], 1
        ),
        work,
    )
    members = build_community(2, 5)
    now = min(int(chain.blocks.head.timestamp), int(pd.Timestamp.now(tz="UTC").timestamp()))
    start, slots = aligned_window(now, 1)
    for spec, account in zip(members, (accounts[6], accounts[7]), strict=True):
        contracts.members.registerMember(account, spec.name, int(spec.kind), sender=operator)
        contracts.members.registerMeter(
            meter_id(spec.meter_label),
            account,
            0,
            spec.capacity_w,
            spec.zone,
            start - 86400,
            sender=operator,
        )
    sim = simulate(members, start, slots, 5)
    gateways = provision(work / "oracle.db", {m.gateway: [m.meter_label] for m in members})
    oracle = OracleProcess(
        str(chain.provider.uri), work / "oracle.db", work, ORACLE_KEY, work / "oracle.log"
    )
    oracle.start()
    try:
        yield oracle, gateways, sim, contracts
    finally:
        oracle.stop()
    assert oracle.process is None


def _rows(sim, meter: str, n: int = 4) -> list[dict]:
    return sim.readings[sim.readings["meter_id"] == meter].head(n).to_dict("records")


def test_wrong_token_is_refused(live_oracle):
    oracle, gateways, sim, _ = live_oracle
    forged = Gateway(gateways[0].name, "not-the-token", gateways[0].meters)
    with httpx.Client() as http, pytest.raises(GatewayError) as info:
        GatewayClient(oracle.base_url, forged, http).post(
            _rows(sim, forged.meters[0]), PostOutcome()
        )
    assert info.value.status == 401
    assert info.value.problem["status"] == 401


def test_a_gateway_cannot_report_another_gateways_meter(live_oracle):
    oracle, gateways, sim, _ = live_oracle
    first, second = gateways
    with httpx.Client() as http, pytest.raises(GatewayError) as info:
        GatewayClient(oracle.base_url, first, http).post(
            _rows(sim, second.meters[0]), PostOutcome()
        )
    assert info.value.status == 403
    assert oracle.meter_statuses(second.meters[0], second.token) == []  # nothing stored


def test_delivery_reposts_are_duplicates_and_changes_conflict(live_oracle, tmp_path):
    oracle, gateways, sim, contracts = live_oracle
    outcome = deliver(sim.readings, gateways, oracle.base_url, speedup=86400 / 4, post_every=24)
    assert outcome.accepted == len(sim.readings) and outcome.duplicates == 0
    gw = gateways[0]
    rows = _rows(sim, gw.meters[0], 2)
    again = PostOutcome()
    with httpx.Client() as http:
        client = GatewayClient(oracle.base_url, gw, http)
        client.post(rows, again)
        assert (again.accepted, again.duplicates) == (0, 2)
        changed = [
            dict(
                rows[0],
                consumed_wh=rows[0]["consumed_wh"] + 1,
                purchased_wh=rows[0]["purchased_wh"] + 1,
            )
        ]
        with pytest.raises(GatewayError) as info:
            client.post(changed, PostOutcome())
    assert info.value.status == 409
    # The standalone CLI re-posts the same seeded community: all duplicates.
    tokens = tmp_path / "gateways.json"
    tokens.write_text(json.dumps({g.name: g.token for g in gateways}))
    end = pd.Timestamp(sim.end, unit="s", tz="UTC").isoformat()
    result = CliRunner().invoke(
        sim_cli,
        [
            "post",
            "--oracle",
            oracle.base_url,
            "--gateways",
            str(tokens),
            "--members",
            "2",
            "--seed",
            "5",
            "--days",
            "1",
            "--end",
            end,
            "--speedup",
            "1e9",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"0 accepted, {len(sim.readings)} duplicates" in result.output
    stored = oracle.meter_statuses(gw.meters[0], gw.token)
    assert len(stored) == sim.slots
    first = next(s for s in stored if s["interval_start"] == rows[0]["start"])
    assert first["consumed_wh"] == rows[0]["consumed_wh"]  # nothing was overwritten


def test_sim_cli_writes_the_importer_csvs(tmp_path):
    result = CliRunner().invoke(
        sim_cli,
        [
            "csv",
            "--members",
            "4",
            "--days",
            "1",
            "--end",
            "2026-06-01T00:00+09:00",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    interval = pd.read_csv(tmp_path / "interval.csv")
    assert len(interval) == 4 * 48
    assert interval["interval_end"].iloc[-1] == "2026-06-01T00:00:00+09:00"
    assert len(pd.read_csv(tmp_path / "broute.csv")) == 4 * 49  # one mark more than slots
    full = pd.read_csv(tmp_path / "full.csv")
    assert {"charge_wh", "discharge_wh", "soc_wh"} <= set(full.columns)
    naive = CliRunner().invoke(
        sim_cli, ["csv", "--end", "2026-06-01T00:00", "--out", str(tmp_path)]
    )
    assert naive.exit_code == 2 and "UTC offset" in naive.output
