"""CSV import: interval values and B-route cumulative registers (unit, coefficient, counter
wrap, missing slot), through the same validation as the API, atomically, then onto the chain."""

from __future__ import annotations

from decimal import Decimal

import pytest
from click.testing import CliRunner
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st
from oracle_fixtures import INTERVAL, iso, start_oracle, write_deployment

from oracle.cli import cli
from oracle.csv_import import BRouteOptions, Mark, derive_intervals
from oracle.store import Store
from zcx.deploy import deploy_all
from zcx.ids import meter_id

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, aligned


def test_registers_to_intervals_with_unit_and_coefficient():
    # 0x02 = 0.01 kWh per count, coefficient 1 -> 10 Wh per count.
    marks = [Mark(T0, 1000, 500, 2000), Mark(T0 + INTERVAL, 1012, 530, 2050)]
    [r], skipped, wraps = derive_intervals("M", marks, BRouteOptions(unit_code=0x02))
    assert (r.start, r.end) == (T0, T0 + INTERVAL)
    assert (r.purchased_wh, r.sold_wh, r.generated_wh) == (120, 300, 500)
    assert r.consumed_wh == 500 + 120 - 300
    assert (skipped, wraps) == (0, 0)
    assert BRouteOptions(unit_code=0x01, coefficient=10).wh_per_count() == Decimal(1000)


def test_counter_wrap():
    # 8 effective digits: 99,999,990 -> 5 is an increase of 15 counts.
    marks = [Mark(T0, 99_999_990, 0), Mark(T0 + INTERVAL, 5, 0)]
    [r], _, wraps = derive_intervals("M", marks, BRouteOptions(unit_code=0x03))
    assert r.purchased_wh == 15 and wraps == 1


def test_missing_slot_skip_or_split():
    marks = [Mark(T0, 0, 0), Mark(T0 + 3 * INTERVAL, 301, 0), Mark(T0 + 4 * INTERVAL, 400, 0)]
    skip, skipped, _ = derive_intervals("M", marks, BRouteOptions(unit_code=0x03, gap="skip"))
    assert [r.start for r in skip] == [T0 + 3 * INTERVAL] and skipped == 3
    split, _, _ = derive_intervals("M", marks, BRouteOptions(unit_code=0x03, gap="split"))
    assert [r.purchased_wh for r in split] == [100, 100, 101, 99]
    assert [r.start for r in split] == [T0 + k * INTERVAL for k in range(4)]


@given(st.lists(st.integers(0, 5_000), min_size=1, max_size=20), st.integers(0, 10**8 - 1))
def test_register_differences_conserve_energy(steps, origin):
    """Whatever the start value (wrapping or not), the intervals sum to the register increase."""
    marks, value = [Mark(T0, origin, 0)], origin
    for k, step in enumerate(steps, 1):
        value = (value + step) % 10**8
        marks.append(Mark(T0 + k * INTERVAL, value, 0))
    readings, _, _ = derive_intervals("M", marks, BRouteOptions(unit_code=0x03))
    assert [r.purchased_wh for r in readings] == steps


@pytest.fixture(scope="module")
def csv_net(admin, operator, bob, oracle_keys, chain, epoch, tmp_path_factory):
    signer = Account.from_key(oracle_keys[0]).address
    contracts, _ = deploy_all(admin, operator.address, [signer], quorum=1)
    contracts.members.registerMember(bob, "Bob Shoten KK", 2, sender=operator)
    for label in ("CSV-1", "CSV-2"):
        contracts.members.registerMeter(
            meter_id(label), bob, 0, 6_000, "TEPCO-13", epoch - 86400, sender=operator
        )
    chain.provider.set_balance(signer, 10**21)
    directory = tmp_path_factory.mktemp("csvdeploy")
    write_deployment(chain.provider.web3, contracts.addresses(), directory)
    return contracts, directory, chain.provider.uri


def _run(csv_net, db, *args):
    _, directory, uri = csv_net
    return CliRunner().invoke(
        cli,
        ["--db", str(db), "--rpc-url", uri, "--deployments-dir", str(directory), *args],
        catch_exceptions=False,
    )


def test_import_broute_then_confirmed(csv_net, tmp_path, epoch, oracle_keys):
    contracts = csv_net[0]
    lines = ["meter_id,timestamp,forward,reverse,generation"]
    fwd, rev, gen = 99_999_000, 0, 0
    for k in range(5):
        if k != 3:  # the 4th mark is missing
            lines.append(f"CSV-1,{iso(epoch + k * INTERVAL)},{fwd},{rev},{gen}")
        fwd, rev, gen = (fwd + 700) % 10**8, rev + 200, gen + 900
    (tmp_path / "broute.csv").write_text("\n".join(lines) + "\n")
    db = tmp_path / "oracle.db"
    result = _run(
        csv_net,
        db,
        "import-csv",
        str(tmp_path / "broute.csv"),
        "--format",
        "broute",
        "--unit",
        "0x03",
    )
    assert result.exit_code == 0, result.output
    assert "2 readings, 2 accepted" in result.output and "2 intervals skipped" in result.output
    rows = Store(db).readings_of("CSV-1", None, None)
    assert [(r.start, r.purchased, r.sold, r.gen, r.cons) for r in rows] == [
        (epoch + k * INTERVAL, 700, 200, 900, 1400) for k in (0, 1)
    ]
    for api in start_oracle(tmp_path, csv_net[2], csv_net[1], oracle_keys[0], ["CSV-1"]):
        api.wait_final(2)
        assert api.store.state_counts() == {"confirmed": 2}
    assert contracts.registry.meterTotals(meter_id("CSV-1")).purchasedWh == 1400


def test_import_interval_is_atomic_and_validated(csv_net, tmp_path, epoch):
    good = f"CSV-2,{iso(epoch)},{iso(epoch + INTERVAL)},100,50,60,10"
    bad = f"CSV-2,{iso(epoch + INTERVAL)},{iso(epoch + INTERVAL + 900)},100,50,60,10"
    too_much = f"CSV-2,{iso(epoch + 2 * INTERVAL)},{iso(epoch + 3 * INTERVAL)},999999,0,0,0"
    header = "meter_id,interval_start,interval_end,generated_wh,consumed_wh,sold_wh,purchased_wh"
    (tmp_path / "bad.csv").write_text("\n".join([header, good, bad, too_much, "junk"]) + "\n")
    db = tmp_path / "oracle.db"
    result = _run(csv_net, db, "import-csv", str(tmp_path / "bad.csv"))
    assert result.exit_code == 1
    assert "interval_end" in result.output and "generated_wh" in result.output
    assert "nothing stored" in result.output
    assert Store(db).count_readings() == 0
    (tmp_path / "good.csv").write_text("\n".join([header, good]) + "\n")
    result = _run(csv_net, db, "import-csv", str(tmp_path / "good.csv"))
    assert result.exit_code == 0 and "1 accepted" in result.output
    status = _run(csv_net, db, "status", "queue")
    assert "accepted   1" in status.output
