"""The portal's message catalogue and server-side form checks (pure: no chain, no browser)."""

from __future__ import annotations

import pytest

from zcx.portal import forms
from zcx.portal.messages import LANGUAGES, MESSAGES, placeholders, t

ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ZCV = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_every_message_exists_in_both_languages_with_the_same_placeholders():
    ja, en = MESSAGES["ja"], MESSAGES["en"]
    assert set(ja) == set(en)
    for key in ja:
        assert placeholders(ja[key]) == placeholders(en[key]), key
    assert LANGUAGES == ("ja", "en")


def test_every_form_error_names_its_field_in_both_languages():
    for lang in LANGUAGES:
        for key in (k for k in MESSAGES[lang] if k.startswith("err_")):
            text = MESSAGES[lang][key]
            if "{field}" in text:
                assert text.startswith("{field}: "), (lang, key)
        assert t(lang, "err_required", field=t(lang, "field_to")).startswith(t(lang, "field_to"))


def _ctx(free: int = 7200, **kw) -> forms.FormContext:
    return forms.FormContext(sender=ALICE, free_units=free, **kw)


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"to": "", "amount": ""}, {"to": "err_required", "amount": "err_required"}),
        ({"to": "0x12", "amount": "abc"}, {"to": "err_address", "amount": "err_amount_number"}),
        (
            {"to": "0x" + "00" * 20, "amount": "0"},
            {"to": "err_zero_address", "amount": "err_amount_positive"},
        ),
        (
            {"to": ALICE.lower(), "amount": "1.0001"},
            {"to": "err_self", "amount": "err_amount_decimals"},
        ),
        ({"to": BOB, "amount": "7.201"}, {"amount": "err_amount_balance"}),
        ({"to": BOB, "amount": "NaN"}, {"amount": "err_amount_number"}),
        ({"to": BOB, "amount": "Infinity"}, {"amount": "err_amount_number"}),
    ],
)
def test_transfer_refusals_name_the_field(fields, problems):
    checked = forms.check_transfer(fields, _ctx(), ZCV)
    assert checked.call is None
    assert {k: v[0] for k, v in checked.errors.items()} == problems


def test_transfer_accepts_the_whole_free_balance():
    checked = forms.check_transfer({"to": BOB.lower(), "amount": "7.2"}, _ctx(), ZCV)
    assert checked.ok and checked.call is not None
    assert checked.call.args == [BOB, "7200"] and checked.call.method == "transfer"


def test_retire_dates_are_inclusive_days_and_ordered():
    good = forms.check_retire(
        {
            "amount": "1",
            "beneficiary": "Sato",
            "reason": "",
            "from_date": "2026-11-01",
            "to_date": "2026-11-30",
        },
        _ctx(),
        ZCV,
    )
    assert good.ok and good.call is not None
    assert good.call.args[3:] == [1793491200, 1796083200]  # Nov 1 00:00 UTC .. Dec 1 00:00 UTC
    bad = forms.check_retire(
        {"amount": "1", "beneficiary": " ", "from_date": "2026-11-30", "to_date": "2026-11-01"},
        _ctx(),
        ZCV,
    )
    assert {k: v[0] for k, v in bad.errors.items()} == {
        "beneficiary": "err_required",
        "to_date": "err_date_order",
    }
    assert forms.check_retire(
        {"amount": "1", "beneficiary": "x" * 101, "from_date": "2026-02-30", "to_date": "x"},
        _ctx(),
        ZCV,
    ).errors.keys() == {"beneficiary", "from_date", "to_date"}


def test_pay_uses_the_one_payment_reference():
    from zcx.domain import payment_reference

    checked = forms.check_pay(
        {"to": BOB, "amount": "0.5", "reference": " 2026-11-0x70997970 "}, _ctx(), ZCV
    )
    assert checked.call is not None
    assert checked.call.args[2] == "0x" + payment_reference("2026-11-0x70997970").hex()


def test_operator_forms_know_members_and_meters():
    ctx = _ctx(is_member=lambda a: a == ALICE, meter_exists=lambda m: m == "ALICE-PV")
    assert (
        forms.check_register_member(
            {"account": ALICE, "name": "A", "kind": "household"}, ctx, ZCV
        ).errors["account"][0]
        == "err_already_member"
    )
    assert (
        forms.check_register_member({"account": BOB, "name": "B", "kind": "bank"}, ctx, ZCV).errors[
            "kind"
        ][0]
        == "err_choice"
    )
    meter = forms.check_register_meter(
        {
            "meter": "ALICE-PV",
            "owner": BOB,
            "method": "solar",
            "capacity_w": "99999999999",
            "zone": "Z",
            "commissioned": "2026-01-01",
        },
        ctx,
        ZCV,
    )
    assert {k: v[0] for k, v in meter.errors.items()} == {
        "meter": "err_meter_exists",
        "owner": "err_not_member",
        "capacity_w": "err_integer",
    }
    assert forms.check_deactivate_meter({"meter": "NOPE"}, ctx, ZCV).errors["meter"][0] == (
        "err_meter_unknown"
    )
    assert forms.check_flag_meter({"meter": "ALICE-PV", "flagged": "1"}, ctx, ZCV).errors == {
        "flag_reason": ("err_required", {})
    }
    cleared = forms.check_flag_meter({"meter": "ALICE-PV", "flagged": ""}, ctx, ZCV)
    assert cleared.call is not None and cleared.call.args[1:] == [False, ""]


def test_demand_response_event_checks():
    # 2026-12-10 17:00 JST = 08:00 UTC, on the 30-minute grid.
    start = 1796889600
    ctx = _ctx(zone_exists=lambda z: z == "TEPCO-13", now=start - 86400)
    good = forms.check_announce_dr(
        {
            "zone": "TEPCO-13",
            "start": "2026-12-10T17:00",
            "slots": "4",
            "target_kwh": "12.5",
            "reward_per_kwh": "0",
        },
        ctx,
        ZCV,
    )
    assert good.call is not None
    assert good.call.args == ["TEPCO-13", start, 4, "12500", "0", []]
    bad = forms.check_announce_dr(
        {
            "zone": "KEPCO-27",
            "start": "2026-12-10T17:10",
            "slots": "49",
            "target_kwh": "1.0001",
            "reward_per_kwh": "-1",
        },
        ctx,
        ZCV,
    )
    assert {k: v[0] for k, v in bad.errors.items()} == {
        "zone": "err_zone_unknown",
        "start": "err_slot_grid",
        "slots": "err_range",
        "target_kwh": "err_kwh_decimals",
        "reward_per_kwh": "err_range",
    }
    past = forms.check_announce_dr(
        {
            "zone": "TEPCO-13",
            "start": "2026-12-09T17:00",
            "slots": "1",
            "target_kwh": "1",
            "reward_per_kwh": "1",
        },
        ctx,
        ZCV,
    )
    assert past.errors == {"start": ("err_future", {})}


def test_serve_says_what_to_do_without_a_node(tmp_path):
    from click.testing import CliRunner

    from zcx.cli import main

    result = CliRunner().invoke(
        main, ["portal", "serve", "--rpc-url", "http://127.0.0.1:9", "--db", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in result.output and "Start the node" in result.output
