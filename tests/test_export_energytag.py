"""`zcx export energytag` (issue 12 point 6): hourly certificates claimed, split, transferred,
retired and revoked on a real Anvil; exported through the CLI; every file validated against
schemas/energytag/; re-read into pandas frames that must match the chain's views and logs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from ape.logging import logger as ape_logger
from click.testing import CliRunner, Result
from conftest import INTERVAL, reading
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from registry_helpers import claim_hourly
from zcv_support import certificate_input, event_args

from zcx import deployments
from zcx.cli import main
from zcx.deployments import Deployment
from zcx.export.energytag import (
    POLICIES,
    ZERO_ADDRESS,
    ChainRecord,
    Claim,
    Device,
    ExportError,
    Issued,
    Move,
    Retirement,
    build_export,
    load_schema,
    schema_errors,
    validate_directory,
)
from zcx.ids import meter_id

HOUR = 3600
EXPIRY_SECONDS = 24 * 2_629_746  # the default: 24 months of 1/12 of 365.2425 days
FIT, FIP = 1, 2
ALICE_PV, BOB_PV = meter_id("ALICE-PV"), meter_id("BOB-PV")


@pytest.fixture(scope="module")
def deployment_dir(registered, chain, tmp_path_factory) -> Path:
    """deployments/<chain_id>.json for the test deployment in a temporary folder."""
    block = chain.blocks.head
    record = Deployment(
        chain_id=chain.chain_id,
        network="ethereum:local:foundry",
        deployment_block=block.number,
        deployment_block_hash=bytes(block.hash).hex(),
        contracts=registered.addresses(),
    )
    directory = tmp_path_factory.mktemp("deployments")
    deployments.save(record, directory)
    return directory


@pytest.fixture(scope="module", autouse=True)
def keep_ape_log_level():
    level = ape_logger.level
    yield
    ape_logger.set_level(level)


@pytest.fixture
def cli(deployment_dir):
    runner = CliRunner(mix_stderr=False)
    env = {"ZCX_DEPLOYMENTS_DIR": str(deployment_dir), "ZCX_NETWORK": None, "ZCX_RPC": None}

    def run(*args: str, code: int = 0) -> Result:
        result = runner.invoke(main, list(args), env=env)
        detail = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
        assert result.exit_code == code, detail
        assert "Traceback" not in result.stdout + result.stderr, detail
        return result

    return run


@pytest.fixture
def scenario(registered, submit, operator, alice, bob, carol, epoch):
    """Alice (FIT, self-consumption) claims certificates 1 and 2 (2 400 units each), Bob
    certificate 3 (6 000). Then: a partial transferLots, a plain transfer, a retireLots over two
    certificates, a plain retirement, a revocation, and a transfer after it. Returns every
    LotMoved and Retired log, from the receipts."""
    zcx = registered
    zcx.members.setSupportStatus(ALICE_PV, FIT, sender=operator)
    submit(
        [reading("ALICE-PV", epoch + i * INTERVAL, gen=1500, cons=400, sold=300) for i in range(4)]
        + [reading("BOB-PV", epoch + i * INTERVAL, gen=3000, sold=0) for i in range(2)]
    )
    claim_hourly(zcx.exchange, zcx.registry, ALICE_PV, sender=alice)
    claim_hourly(zcx.exchange, zcx.registry, BOB_PV, sender=bob)
    assert [zcx.zcv.certificate(c).units for c in (1, 2, 3)] == [2400, 2400, 6000]
    start, end = epoch, epoch + 30 * 86400
    txs = [
        zcx.zcv.transferLots(bob, [(1, 1000)], sender=alice),
        zcx.zcv.transfer(carol, 2000, sender=alice),
        zcx.zcv.retireLots(
            [(1, 600), (3, 1500)], "Shop Sato", "Nov consumption", start, end, sender=bob
        ),
        zcx.zcv.retire(1500, "Carol Bakery", "own use", start, end, sender=carol),
        zcx.zcv.revokeCertificate(2, "meter tampered", sender=operator),
        zcx.zcv.transferLots(alice, [(3, 500)], sender=bob),
    ]
    moves = [m for tx in txs for m in event_args(tx, zcx.zcv.LotMoved)]
    retired = [r for tx in txs for r in event_args(tx, zcx.zcv.Retired)]
    return {"moves": moves, "retired": retired, "txs": txs}


def frames(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    bundles = pd.json_normalize(json.loads((out / "bundles.json").read_text())["bundles"])
    actions = pd.json_normalize(json.loads((out / "actions.json").read_text())["actions"])
    return bundles, actions, json.loads((out / "export.json").read_text())


def iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(text: str) -> int:
    assert text.endswith("Z")
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp())


# --------------------------------------------------------------------------- round trip


def test_export_round_trips_to_the_chain(
    cli, scenario, registered, alice, bob, carol, chain, tmp_path
):
    zcx, out = registered, tmp_path / "energytag"
    result = cli("export", "energytag", "--out", str(out))
    assert "bundles" in result.stdout and "actions" in result.stdout

    # Every file is valid against its schema, and the manifest's sha256 match.
    for name in ("bundles", "actions", "export"):
        Draft202012Validator.check_schema(load_schema(name))
        document = json.loads((out / f"{name}.json").read_text())
        Draft202012Validator(
            load_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER
        ).validate(document)
    assert validate_directory(out) == []

    bundles, actions, manifest = frames(out)
    assert (
        manifest["chain_id"] == chain.chain_id and manifest["to_block"] == chain.blocks.head.number
    )
    assert manifest["token"] == zcx.zcv.address and manifest["skipped_schema1_certificates"] == []
    assert (manifest["bundle_count"], manifest["action_count"]) == (len(bundles), len(actions))

    # Units per certificate: every bundle of a certificate adds up to its units, retired
    # bundles to its retired units, and the ranges tile 1..units exactly.
    for cid in (1, 2, 3):
        cert = zcx.zcv.certificate(cid)
        mine = bundles[bundles["zcx.certificate_id"] == cid].sort_values("bundle_id_range_start")
        assert mine["bundle_quantity"].sum() == cert.units
        cancelled = mine[mine["certificate_status"] == "Cancelled"]["bundle_quantity"].sum()
        assert cancelled == cert.retiredUnits
        assert list(mine["bundle_id_range_start"]) == [1, *(mine["bundle_id_range_end"][:-1] + 1)]
        assert mine["bundle_id_range_end"].iloc[-1] == cert.units
        assert (
            mine["bundle_quantity"] == mine.eval("bundle_id_range_end - bundle_id_range_start + 1")
        ).all()
        assert set(mine["issuance_id"]) == {f"ZCX-{manifest['chain_id']}-{zcx.zcv.address}-{cid}"}
        assert set(mine["production_starting_interval"].map(utc)) == {cert.periodStart}
        assert set(mine["production_ending_interval"].map(utc)) == {cert.periodStart + HOUR}
        assert (mine["zcx.certificate_wh"] <= mine["device_capacity"]).all()  # Wh <= W x 1 h
        policy = POLICIES[zcx.zcv.hourlyCertificate(cid).policy]
        assert set(mine["zcx.issuance_policy"]) == {policy}
    assert bundles["hash"].is_unique

    # Holders' totals: Active = spendable balance, Active + Withdrawn = balance, per lot too.
    held = bundles[bundles["certificate_status"] != "Cancelled"]
    for holder in (alice, bob, carol):
        mine = held[held["account_id"] == holder.address]
        active = mine[mine["certificate_status"] == "Active"]["bundle_quantity"].sum()
        assert active == zcx.zcv.balanceOf(holder) - zcx.zcv.frozenBalanceOf(holder)
        assert mine["bundle_quantity"].sum() == zcx.zcv.balanceOf(holder)
        for cid in (1, 2, 3):
            lot = mine[mine["zcx.certificate_id"] == cid]["bundle_quantity"].sum()
            assert lot == zcx.zcv.lotBalance(holder, cid)
    withdrawn = bundles[bundles["certificate_status"] == "Withdrawn"]
    assert set(withdrawn["zcx.certificate_id"]) == {2}
    assert set(withdrawn["zcx.revocation_reason"]) == {"meter tampered"}
    assert withdrawn["bundle_quantity"].sum() == 2400 - zcx.zcv.certificate(2).retiredUnits

    # Retired units and beneficiaries, per retirement, in bundles and in cancel actions.
    cancels = actions[actions["action_type"] == "cancel"]
    retired = bundles[bundles["certificate_status"] == "Cancelled"]
    assert len(scenario["retired"]) == 2
    for event in scenario["retired"]:
        rid, record = event["retirementId"], zcx.zcv.retirement(event["retirementId"])
        for frame, quantity, beneficiary in (
            (retired, "bundle_quantity", "zcx.beneficiary"),
            (cancels, "certificate_quantity", "beneficiary"),
        ):
            rows = frame[frame["zcx.retirement_id"] == rid]
            assert rows[quantity].sum() == record.units
            assert set(rows[beneficiary]) == {record.beneficiary}
        assert set(retired[retired["zcx.retirement_id"] == rid]["account_id"]) == {record.holder}
        by_cert = cancels[cancels["zcx.retirement_id"] == rid].groupby("zcx.certificate_id")
        assert by_cert["certificate_quantity"].sum().to_dict() == dict(
            zip(record.certificateIds, record.certificateUnits, strict=True)
        )
    assert zcx.zcv.totalRetired() == retired["bundle_quantity"].sum()

    # Transfers: one action per moved range, adding up to each LotMoved log.
    moved: dict[tuple[str, str, int], int] = defaultdict(int)
    for m in scenario["moves"]:
        if m["to"] != ZERO_ADDRESS:
            moved[(m["from"], m["to"], m["certificateId"])] += m["units"]
    transfers = actions[actions["action_type"] == "transfer"]
    got = transfers.groupby(["source_id", "target_id", "zcx.certificate_id"])[
        "certificate_quantity"
    ].sum()
    assert {k: int(v) for k, v in got.items()} == dict(moved)
    assert transfers["beneficiary"].isna().all()

    # The revocation withdrew what each holder still held of certificate 2.
    withdraws = actions[actions["action_type"] == "withdraw"]
    assert withdraws["certificate_quantity"].sum() == withdrawn["bundle_quantity"].sum()
    assert set(withdraws["zcx.certificate_id"]) == {2}

    # Device attributes from the member registry, support status from the claim.
    alice_rows = bundles[bundles["device_id"] == "ALICE-PV"]
    assert (
        set(alice_rows["support_received"])
        == set(alice_rows["zcx.device_support_status"])
        == {"FIT"}
    )
    assert set(alice_rows["dissemination_level"]) == {"Self-consumed"}
    assert set(alice_rows["device_name"]) == {"Alice Tanaka"}
    bob_rows = bundles[bundles["device_id"] == "BOB-PV"]
    assert set(bob_rows["support_received"]) == {"None"}
    assert set(bob_rows["dissemination_level"]) == {"Total generation"}
    assert set(bob_rows["device_capacity"]) == {50_000}
    meter = zcx.members.meter(ALICE_PV)
    assert set(alice_rows["device_production_start_date"].map(utc)) == {meter.spec.commissionedAt}
    assert set(bundles["country_of_issuance"]) == {"JP"}
    assert set(bundles["issue_market_zone"]) == {"TEPCO-13"}
    assert set(bundles["connected_grid_identification"]) == {"TEPCO"}
    assert set(bundles["energy_source"]) == {"Solar"} and set(bundles["face_value"]) == {1}

    # Actions are in chain order with UTC times no earlier than the production they move.
    keys = list(zip(actions["zcx.block"], actions["zcx.log_index"], strict=True))
    assert keys == sorted(keys) and actions["action_id"].is_unique
    assert (
        actions["action_completed_datetime"].map(utc) >= actions["certificate_period_end"].map(utc)
    ).all()


def test_each_hour_carries_the_policy_in_force_at_its_start(
    cli, registered, submit, operator, alice, chain, tmp_path
):
    """FIT switches to Generation from `effective`: the hour before stays self-consumed, the
    hour from `effective` counts all generation, as each certificate's stored policy says."""
    members = registered.members
    members.setSupportStatus(ALICE_PV, FIT, sender=operator)
    effective = (chain.pending_timestamp // HOUR + 2) * HOUR
    members.scheduleIssuancePolicy(FIT, 0, effective, sender=operator)  # 0: Generation
    chain.mine(timestamp=effective + HOUR + 60)
    before = effective - HOUR
    submit([reading("ALICE-PV", before + i * INTERVAL, gen=1000, sold=300) for i in range(4)])
    claim_hourly(registered.exchange, registered.registry, ALICE_PV, sender=alice)
    members.setSupportStatus(ALICE_PV, FIP, sender=operator)  # after the claim: not retroactive
    cli("export", "energytag", "--out", str(tmp_path))
    bundles, _, _ = frames(tmp_path)
    by_hour = bundles.set_index("production_starting_interval")
    first, second = by_hour.loc[iso(before)], by_hour.loc[iso(effective)]
    assert (first["dissemination_level"], first["bundle_quantity"]) == ("Self-consumed", 1400)
    assert (second["dissemination_level"], second["bundle_quantity"]) == ("Total generation", 2000)
    assert [POLICIES[registered.zcv.hourlyCertificate(c).policy] for c in (1, 2)] == [
        "SelfConsumption",
        "Generation",
    ]
    assert set(bundles["support_received"]) == {"FIT"}
    assert set(bundles["zcx.device_support_status"]) == {"FIP"}


def test_from_block_limits_actions_but_not_bundles(cli, scenario, tmp_path):
    full, tail = tmp_path / "full", tmp_path / "tail"
    cli("export", "energytag", "--out", str(full))
    retire_block = scenario["txs"][2].block_number
    cli("export", "energytag", "--out", str(tail), "--from-block", str(retire_block))
    full_bundles, full_actions, _ = frames(full)
    tail_bundles, tail_actions, manifest = frames(tail)
    pd.testing.assert_frame_equal(full_bundles, tail_bundles)
    later = full_actions[full_actions["zcx.block"] >= retire_block].reset_index(drop=True)
    pd.testing.assert_frame_equal(later, tail_actions)
    assert 0 < len(tail_actions) < len(full_actions)
    assert manifest["actions_from_block"] == retire_block
    assert validate_directory(tail) == []


def test_the_installed_command_attaches_over_rpc_url(
    cli, scenario, chain, deployment_dir, tmp_path
):
    """The real `zcx` script in a fresh process, from another folder, reading the Anvil this
    session runs through --rpc-url, writes the same files as the in-process run."""
    cli("export", "energytag", "--out", str(tmp_path / "inside"))
    script = shutil.which("zcx") or str(Path(__file__).parents[1] / ".venv" / "bin" / "zcx")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZCX_", "APE_FOUNDRY"))}
    argv = ["export", "energytag", "--out", str(tmp_path / "outside")]
    argv += ["--rpc-url", chain.provider.uri, "--deployments", str(deployment_dir)]
    result = subprocess.run(
        [script, *argv], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    for name in ("bundles.json", "actions.json", "export.json"):
        assert (tmp_path / "outside" / name).read_text() == (tmp_path / "inside" / name).read_text()


# --------------------------------------------------------------------------- faults and bad input


def test_an_edited_export_fails_validation(cli, scenario, tmp_path):
    out = tmp_path / "x"
    cli("export", "energytag", "--out", str(out))
    bundles = json.loads((out / "bundles.json").read_text())
    cancelled = next(b for b in bundles["bundles"] if b["certificate_status"] == "Cancelled")
    cancelled["zcx"]["beneficiary"] = None  # a cancellation must name its beneficiary
    cancelled["production_ending_interval"] = "2026-11-02 10:00:00+09:00"  # not UTC ISO 8601
    assert len(schema_errors("bundles", bundles)) == 2
    cancelled["zcx"]["beneficiary"] = "Someone else"
    cancelled["production_ending_interval"] = cancelled["production_starting_interval"]
    (out / "bundles.json").write_text(json.dumps(bundles))
    assert validate_directory(out) == ["bundles.json: sha256 differs from export.json"]


def test_schema1_certificates_are_left_out_and_listed(
    cli, registered, submit, admin, alice, bob, epoch, tmp_path
):
    """A schema-1 certificate may span days, more than EnergyTag's hour: it is left out, with its
    moves, and a retirement over both schemas exports only its hourly part."""
    zcv = registered.zcv
    zcv.grantRole(zcv.ISSUER_ROLE(), admin, sender=admin)
    zcv.issue(alice, certificate_input(5000, serial=1), sender=admin)  # certificate 1, schema 1
    submit([reading("ALICE-PV", epoch + i * INTERVAL, gen=900) for i in range(2)])
    claim_hourly(registered.exchange, registered.registry, ALICE_PV, sender=alice)  # 2: 1 800
    zcv.transfer(bob, 6000, sender=alice)
    # Consumed within both certificates' vintage year (the retire rule).
    tx = zcv.retire(6000, "Shop Sato", "", epoch, epoch + 86400, sender=bob)
    (retired,) = event_args(tx, zcv.Retired)
    assert sorted(retired["certificateIds"]) == [1, 2]
    cli("export", "energytag", "--out", str(tmp_path))
    bundles, actions, manifest = frames(tmp_path)
    assert manifest["skipped_schema1_certificates"] == [1]
    assert set(bundles["zcx.certificate_id"]) == set(actions["zcx.certificate_id"]) == {2}
    cancelled = bundles[bundles["certificate_status"] == "Cancelled"]
    hourly_part = dict(zip(retired["certificateIds"], retired["certificateUnits"], strict=True))[2]
    assert cancelled["bundle_quantity"].sum() == hourly_part == zcv.certificate(2).retiredUnits


def test_out_that_is_a_file_is_a_one_line_usage_error(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for target in (blocker, blocker / "inside"):
        result = cli("export", "energytag", "--out", str(target), code=2)
        lines = [line for line in result.stderr.splitlines() if "--out" in line]
        assert len(lines) == 1 and "a file is in the way" in lines[0], result.stderr


def test_unknown_network_is_a_one_line_usage_error(cli, tmp_path):
    result = cli(
        "export",
        "energytag",
        "--out",
        str(tmp_path / "o"),
        "--network",
        "ethereum:nowhere:x",
        code=2,
    )
    assert "unknown network 'ethereum:nowhere:x'" in result.stderr
    assert not (tmp_path / "o").exists()  # refused before anything is created


def test_no_deployment_record_is_a_one_line_error(cli, tmp_path):
    empty = tmp_path / "no-deployments"
    empty.mkdir()
    argv = ["export", "energytag", "--out", str(tmp_path / "o"), "--deployments", str(empty)]
    result = cli(*argv, code=1)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "run `ape run deploy`" in line
    assert not (tmp_path / "o").exists()


def test_a_move_beyond_the_replayed_holding_is_refused():
    """Logs missing from the read (a gap in eth_getLogs pages) must not give bundles."""
    holder, other = "0x" + "11" * 20, "0x" + "22" * 20
    mid = "0x" + "ab" * 32
    record = ChainRecord(
        chain_id=31337,
        token="0x" + "33" * 20,
        exchange="0x" + "44" * 20,
        from_block=1,
        to_block=9,
        issued=[Issued(1 << 24, 1, mid, holder, 100, 100, 3600, 7200, "0x" + "00" * 32)],
        claims=[Claim(1, 1, 1, 0)],
        moves=[Move(2 << 24, 2 << 24, holder, other, 1, 101)],
        retirements=[],
        revocations=[],
        devices={mid: Device(mid, "M", "Owner", "Solar", 5000, 0, "TEPCO-13", 0)},
        policies={1: 0},
        block_times={1: 1, 2: 2, 9: 9},
        expiry_seconds=EXPIRY_SECONDS,
    )
    with pytest.raises(ExportError, match="moves 101 units but holds 100"):
        build_export(record)


def test_burnt_lots_must_match_their_retirement_record():
    holder, mid = "0x" + "11" * 20, "0x" + "ab" * 32
    record = ChainRecord(
        chain_id=31337,
        token="0x" + "33" * 20,
        exchange="0x" + "44" * 20,
        from_block=1,
        to_block=9,
        issued=[Issued(1 << 24, 1, mid, holder, 100, 100, 3600, 7200, "0x" + "00" * 32)],
        claims=[Claim(1, 1, 1, 0)],
        moves=[Move(2 << 24, 2 << 24, holder, ZERO_ADDRESS, 1, 40)],
        retirements=[Retirement((2 << 24) + 1, 2 << 24, 1, holder, "B", "", 0, 1, ((1, 50),))],
        revocations=[],
        devices={mid: Device(mid, "M", "Owner", "Solar", 5000, 0, "TEPCO-13", 0)},
        policies={1: 0},
        block_times={1: 1, 2: 2, 9: 9},
        expiry_seconds=EXPIRY_SECONDS,
    )
    with pytest.raises(ExportError, match="retirement 1"):
        build_export(record)


# --------------------------------------------------------------------------- the replay, pure

HOLDERS = ["0x" + f"{i:02x}" * 20 for i in (0x11, 0x22, 0x33)]
MID = "0x" + "ab" * 32


@st.composite
def histories(draw):
    """A certificate of `units` issued to holder 0, then random moves and retirements that a
    chain would accept (never more than the sender holds), tracked in a plain model."""
    units = draw(st.integers(1, 5_000))
    held = {HOLDERS[0]: units, HOLDERS[1]: 0, HOLDERS[2]: 0}
    steps = []
    for _ in range(draw(st.integers(0, 25))):
        source = draw(st.sampled_from([h for h in HOLDERS if held[h]] or [HOLDERS[0]]))
        if not held[source]:
            break
        amount = draw(st.integers(1, held[source]))
        target = draw(st.sampled_from([*[h for h in HOLDERS if h != source], ZERO_ADDRESS]))
        held[source] -= amount
        if target != ZERO_ADDRESS:
            held[target] += amount
        steps.append((source, target, amount))
    return units, steps, held


@settings(max_examples=150, deadline=None)
@given(histories())
def test_replayed_ranges_tile_the_certificate_and_follow_every_move(history):
    units, steps, held = history
    moves, retirements = [], []
    for block, (source, target, amount) in enumerate(steps, start=2):
        pos = block << 24
        moves.append(Move(pos, pos, source, target, 1, amount))
        if target == ZERO_ADDRESS:
            retirements.append(
                Retirement(
                    pos + 1,
                    pos,
                    len(retirements) + 1,
                    source,
                    f"B{block}",
                    "",
                    0,
                    1,
                    ((1, amount),),
                )
            )
    last = len(steps) + 2
    record = ChainRecord(
        chain_id=31337,
        token="0x" + "33" * 20,
        exchange="0x" + "44" * 20,
        from_block=1,
        to_block=last,
        issued=[Issued(1 << 24, 1, MID, HOLDERS[0], units, units, 3600, 7200, "0x" + "00" * 32)],
        claims=[Claim(1, 1, 1, 0)],
        moves=moves,
        retirements=retirements,
        revocations=[],
        devices={MID: Device(MID, "M", "Owner", "Solar", 5000, 0, "TEPCO-13", 0)},
        policies={1: 0},
        block_times={b: 7_200 + b for b in range(1, last + 1)},  # before the expiry
        expiry_seconds=EXPIRY_SECONDS,
    )
    export = build_export(record)
    bundles = pd.DataFrame(export.bundles).sort_values("bundle_id_range_start")
    assert list(bundles["bundle_id_range_start"]) == [1, *(bundles["bundle_id_range_end"][:-1] + 1)]
    assert bundles["bundle_id_range_end"].iloc[-1] == units and bundles["hash"].is_unique
    active = bundles[bundles["certificate_status"] == "Active"]
    assert active.groupby("account_id")["bundle_quantity"].sum().to_dict() == {
        h: u for h, u in held.items() if u
    }
    cancelled = bundles[bundles["certificate_status"] == "Cancelled"]
    burnt = {i + 1: a for i, (_, _, a) in enumerate(s for s in steps if s[1] == ZERO_ADDRESS)}
    assert (
        cancelled.groupby(cancelled["zcx"].map(lambda z: z["retirement_id"]))["bundle_quantity"]
        .sum()
        .to_dict()
        == burnt
    )
    per_log: dict[int, int] = defaultdict(int)
    for action in export.actions:
        per_log[action["zcx"]["block"]] += action["certificate_quantity"]
    assert per_log == {b: a for b, (_, _, a) in enumerate(steps, start=2)}
    if steps:  # the first move takes the lowest ids: 1 .. its units
        first = export.actions[0]
        assert (
            first["source_certificate_bundle_id_range_start"],
            first["certificate_quantity"],
        ) == (
            1,
            steps[0][2],
        )
    assert (
        schema_errors("bundles", {"format": "zcx-energytag-bundles/1", "bundles": export.bundles})
        == []
    )
    assert (
        schema_errors("actions", {"format": "zcx-energytag-actions/1", "actions": export.actions})
        == []
    )


def test_units_held_past_expiry_are_exported_expired(cli, scenario, registered, chain, tmp_path):
    """Held units of a certificate past ZeroCarbonValue.expiresAt are Expired; retired and
    withdrawn ones keep their final status; every bundle names its expiry (Ape reverts the
    clock after the test)."""
    zcv = registered.zcv
    expires = {c: zcv.expiresAt(c) for c in (1, 2, 3)}
    assert expires[1] - zcv.certificate(1).periodEnd == EXPIRY_SECONDS
    before = tmp_path / "before"
    cli("export", "energytag", "--out", str(before))
    bundles, _, _ = frames(before)
    assert "Expired" not in set(bundles["certificate_status"])
    chain.provider.make_request(
        "evm_increaseTime", [max(expires.values()) - chain.pending_timestamp + 1]
    )
    chain.mine()
    after = tmp_path / "after"
    cli("export", "energytag", "--out", str(after))
    assert validate_directory(after) == []
    expired, _, _ = frames(after)
    for frame in (bundles, expired):
        for cid, exact in expires.items():
            rows = frame[frame["zcx.certificate_id"] == cid]
            assert set(rows["zcx.expires_at"]) == {iso(exact)}
            assert set(rows["expiry_datestamp"]) == {iso(exact)[:10]}
    was = bundles.set_index(["zcx.certificate_id", "bundle_id_range_start"])["certificate_status"]
    now = expired.set_index(["zcx.certificate_id", "bundle_id_range_start"])["certificate_status"]
    assert set(now[was == "Active"]) == {"Expired"}
    assert (now[was != "Active"] == was[was != "Active"]).all()
    assert all(zcv.isFrozen(c) for c in expires)
