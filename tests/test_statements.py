"""Retirement statements on a real Anvil: content equals the chain, a monthly statement sums its
retirements, Chromium prints the PDF, `zcx verify statement` accepts it untouched and rejects it
tampered (a printed figure, the statement block, or both consistently)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from ape import networks
from click.testing import CliRunner, Result
from conftest import INTERVAL, reading
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfWriter
from registry_helpers import claim_hourly
from statements_support import edit_block, edit_printed_text

from zcx import deployments
from zcx.audit.events import abis_from_manifest
from zcx.cli import COMMAND_GROUPS, main
from zcx.deployments import Deployment
from zcx.eip712 import sign_quorum
from zcx.ids import meter_id
from zcx.statements import (
    CertificateUse,
    CfeScore,
    ChainReader,
    RetirementEntry,
    Statement,
    StatementError,
    beneficiary_statement,
    layout,
    month_bounds,
    render_statement_html,
    retirement_statement,
    statement_from_canonical,
    verification_page_html,
)
from zcx.statements.verify import compare_printed, squeeze

TOKYO = ZoneInfo("Asia/Tokyo")
SATO = "Shop Sato 佐藤商店"
BASE = "http://127.0.0.1:8700"


# ---------------------------------------------------------------------------- the chain


def _month_after(month: str) -> str:
    year, number = map(int, month.split("-"))
    return f"{year + number // 12}-{number % 12 + 1:02d}"


@pytest.fixture(scope="module")
def statement_scenario(
    registered, alice, bob, submitter, oracle_keys, chain, epoch, tmp_path_factory
):
    """Alice claims two certificates and Bob one; four retirements:
    1: Alice, 6 000 units for SATO over the whole month (spans both her certificates);
    2: Bob, 1 500 units for SATO on days 10..20 of the month;
    3: Bob, 500 units for SATO in the next month (not in the month's statement);
    4: Alice, 100 units for another beneficiary in the month."""
    directory = tmp_path_factory.mktemp("deployments")
    head = chain.blocks.head
    deployments.save(
        Deployment(
            chain_id=chain.chain_id,
            network="ethereum:local:foundry",
            deployment_block=head.number,
            deployment_block_hash=bytes(head.hash).hex(),
            contracts=registered.addresses(),
            roles={},
            config={},
        ),
        directory,
    )

    def submit(label: str, first: int, count: int, gen: int) -> None:
        readings = [reading(label, epoch + (first + i) * INTERVAL, gen=gen) for i in range(count)]
        signatures = sign_quorum(
            readings, chain.chain_id, str(registered.registry.address), oracle_keys[:2]
        )
        registered.registry.submitBatch(
            [r.as_tuple() for r in readings], signatures, sender=submitter
        )

    def claim(label: str, who) -> None:
        claim_hourly(registered.exchange, registered.registry, meter_id(label), sender=who)

    # One clock hour per claim, so one hourly certificate each: 4 800 then 3 600 units.
    submit("ALICE-PV", 0, 2, 2400)
    claim("ALICE-PV", alice)
    submit("ALICE-PV", 2, 2, 1800)
    claim("ALICE-PV", alice)
    submit("BOB-PV", 0, 2, 10_000)
    claim("BOB-PV", bob)

    generated = datetime.fromtimestamp(epoch, TOKYO)
    # Retirements consume within the certificates' vintage year (JST): when the certificates date
    # from December, the statement month is November, so "the next month" stays in the year.
    month = f"{generated.year}-{min(generated.month, 11):02d}"
    start, end = month_bounds(month)
    next_start, next_end = month_bounds(_month_after(month))
    day = 86400
    zcv = registered.zcv
    receipts = [
        zcv.retire(6000, SATO, "Monthly consumption", start, end, sender=alice),
        zcv.retire(1500, SATO, "Store 2", start + 9 * day, start + 20 * day, sender=bob),
        zcv.retire(500, SATO, "Next month", next_start, next_end, sender=bob),
        zcv.retire(100, "Other KK", "Office", start, end, sender=alice),
    ]
    return {"month": month, "receipts": receipts, "deployments": directory}


@pytest.fixture(scope="module")
def reader(registered, statement_scenario) -> ChainReader:
    abi = abis_from_manifest()["ZeroCarbonValue"]
    return ChainReader(networks.provider.web3, str(registered.zcv.address), abi)


@pytest.fixture(scope="module")
def cli(statement_scenario):
    runner = CliRunner(mix_stderr=False)
    env = {
        "ZCX_DEPLOYMENTS_DIR": str(statement_scenario["deployments"]),
        "ZCX_RPC_URL": networks.provider.uri,
    }

    def run(*args: str, code: int = 0) -> Result:
        result = runner.invoke(main, list(args), env=env)
        detail = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
        assert result.exit_code == code, detail
        assert "Traceback" not in result.stdout + result.stderr, detail
        return result

    return run


@pytest.fixture(scope="module")
def statement_pdf(cli, tmp_path_factory) -> Path:
    """Retirement 1's statement, printed by Chromium through `zcx statements retirement`."""
    out = tmp_path_factory.mktemp("pdf") / "retirement-1.pdf"
    result = cli("statements", "retirement", "1", "--out", str(out), "--verify-base-url", BASE)
    assert f"wrote {out}: retirement 1, {SATO}" in result.stdout
    return out


def _verify(cli, pdf: bytes, tmp_path: Path, code: int) -> Result:
    path = tmp_path / "statement.pdf"
    path.write_bytes(pdf)
    return cli("verify", "statement", str(path), code=code)


# ---------------------------------------------------------------------------- content


def test_retirement_statement_equals_the_chain(reader, registered, statement_scenario, chain):
    statement = retirement_statement(reader, 1, verify_base=BASE)
    (entry,) = statement.retirements
    record = registered.zcv.retirement(1)
    receipt = statement_scenario["receipts"][0]
    block = chain.provider.get_block(receipt.block_number)

    assert (statement.chain_id, statement.zcv) == (chain.chain_id, str(registered.zcv.address))
    assert (entry.holder, entry.beneficiary, entry.reason) == (
        record.holder,
        record.beneficiary,
        record.reason,
    )
    assert (entry.consumption_start, entry.consumption_end, entry.units) == (
        record.consumptionStart,
        record.consumptionEnd,
        record.units,
    )
    assert entry.txn_hash == receipt.txn_hash
    assert (entry.block_number, entry.block_time) == (receipt.block_number, block.timestamp)
    assert entry.block_hash == "0x" + bytes(block.hash).hex()
    assert [(c.id, c.units_used) for c in entry.certificates] == list(
        zip(record.certificateIds, record.certificateUnits, strict=True)
    )
    assert len(entry.certificates) == 2, "6 000 units take both of Alice's certificates"
    for use in entry.certificates:
        cert = registered.zcv.certificate(use.id)
        # Hourly (schema 2) certificates leave the static attributes to the member registry: the
        # statement still names the generator, its zone and capacity.
        assert (cert.schemaVersion, cert.ownerName, cert.zone, cert.capacityW) == (2, "", "", 0)
        assert (use.owner_name, use.zone, use.capacity_w, use.wh, use.units) == (
            "Alice Tanaka",
            "TEPCO-13",
            5_000,
            cert.wh,
            cert.units,
        )
        assert (use.meter, use.method) == ("ALICE-PV", "Solar")
        assert (use.period_start, use.period_end, use.issued_at) == (
            cert.periodStart,
            cert.periodEnd,
            cert.issuedAt,
        )
    assert entry.wh == 6000, "1 unit = 1 Wh at the default rate"
    assert entry.cfe is None, "a plain retirement has no hourly CFE score"
    assert statement.verify_url == (
        f"{BASE}/verify/retirement/{chain.chain_id}/{registered.zcv.address}/1"
    )


def test_monthly_statement_sums_its_retirements(reader, statement_scenario):
    statement = beneficiary_statement(reader, SATO, statement_scenario["month"])
    assert [r.id for r in statement.retirements] == [1, 2], "not next month's, not Other KK's"
    assert statement.units == 6000 + 1500
    assert statement.wh == sum(r.wh for r in statement.retirements) == 7500
    summary = {row.field: row.value for row in layout(statement).sections[0].rows}
    assert summary["units"] == "7.500 ZCV (7,500 units)"
    assert summary["kwh"] == "7.500 kWh"
    assert summary["retirement_count"] == "2"
    next_month = beneficiary_statement(reader, SATO, _month_after(statement_scenario["month"]))
    assert [r.id for r in next_month.retirements] == [3]
    first_block = statement_scenario["receipts"][0].block_number
    earlier = beneficiary_statement(
        reader, SATO, statement_scenario["month"], as_of_block=first_block
    )
    assert [r.id for r in earlier.retirements] == [1], "only what was recorded by then"
    assert summary["as_of_block"] == f"{statement.as_of_block:,}"


def test_statement_refusals_name_the_field(reader, statement_scenario):
    with pytest.raises(StatementError, match=r"retirement: no retirement 9 \(ids 1..4\)"):
        retirement_statement(reader, 9)
    with pytest.raises(StatementError, match="month: '2026-13' is not YYYY-MM"):
        beneficiary_statement(reader, SATO, "2026-13")
    with pytest.raises(StatementError, match="beneficiary: no retirement names 'Nobody'"):
        beneficiary_statement(reader, "Nobody", statement_scenario["month"])
    with pytest.raises(StatementError, match="beneficiary: must not be empty"):
        beneficiary_statement(reader, " ", statement_scenario["month"])


def test_month_bounds_are_local():
    start, end = month_bounds("2026-11")
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 10, 31, 15, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert month_bounds("2026-12", "UTC")[1] == int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())


def test_html_page_has_both_languages_local_time_qr_and_the_block(reader):
    statement = retirement_statement(reader, 1, verify_base=BASE, issued_at=1_790_000_000)
    html = render_statement_html(statement)
    for text in (
        "受益者",
        "Beneficiary",
        "証書 #",
        "Certificate #",
        "発電方式",
        "太陽光 Solar",
        "JST (UTC+09:00)",
        statement.verify_url,
        statement.retirements[0].txn_hash,
    ):
        assert text in html
    assert "<svg" in html and 'class="qr"' in html
    assert "Hourly CFE score" not in html
    block = html.split('id="zcx-statement">', 1)[1].split("</script>", 1)[0]
    assert statement_from_canonical(json.loads(block)) == statement
    page = verification_page_html(statement, checked_block=123)
    assert "as of block 123" in page and 'class="qr"' not in page


def test_hostile_beneficiary_text_stays_text(reader):
    """Anyone can retire naming any beneficiary: markup in it is escaped, on the page and in the
    embedded block."""
    hostile = "</script><script>alert(1)</script><!--<script>"
    plain = retirement_statement(reader, 1)
    entry = replace(plain.retirements[0], beneficiary=hostile, reason="<b>x</b>")
    statement = replace(plain, beneficiary=hostile, retirements=(entry,))
    html = render_statement_html(statement)
    assert "<script>alert" not in html and "<b>x</b>" not in html
    assert html.count("<script") == 1, "only the statement block"
    block = html.split('id="zcx-statement">', 1)[1].split("</script>", 1)[0]
    assert statement_from_canonical(json.loads(block)) == statement


def test_hourly_cfe_score_is_shown_only_for_a_matched_retirement(reader):
    plain = retirement_statement(reader, 1)
    entry = plain.retirements[0]
    scored = replace(entry, cfe=CfeScore(matched_wh=3500, consumption_wh=4000))
    matched = replace(plain, retirements=(scored,))
    rows = {row.field: row.value for s in layout(matched).sections for row in s.rows}
    assert rows["retirements[1].cfe"] == "87.5 % (3.500 kWh / 4.000 kWh)"
    assert "Hourly CFE score" in render_statement_html(matched)
    assert statement_from_canonical(json.loads(matched.canonical_json())) == matched
    plain_fields = [row.field for section in layout(plain).sections for row in section.rows]
    assert not any(field.endswith(".cfe") for field in plain_fields)


# ---------------------------------------------------------------------------- PDF and verify


def test_chromium_pdf_verifies_against_the_chain(cli, statement_pdf):
    assert statement_pdf.read_bytes().startswith(b"%PDF-")
    result = cli("verify", "statement", str(statement_pdf))
    assert result.stdout.startswith(f"OK {statement_pdf}: ")
    assert "retirements 1" in result.stdout
    figures = int(result.stdout.split(": ", 1)[1].split(" figures", 1)[0])
    assert figures == 7 + 10 + 2 * 10, "summary, retirement and two certificates' rows"


def test_a_tampered_printed_figure_fails(cli, statement_pdf, tmp_path):
    # The retirement's own "Units retired" row (the summary's is the first occurrence).
    pdf = edit_printed_text(statement_pdf.read_bytes(), "6,000units", "9,000units", occurrence=1)
    result = _verify(cli, pdf, tmp_path, code=1)
    assert (
        "printed vs chain: retirements[1].units: chain '6.000 ZCV (6,000 units)', "
        "printed '6.000 ZCV (9,000 units)'"
    ) in result.stderr
    assert "block vs printed: retirements[1].units" in result.stderr
    assert "block vs chain" not in result.stderr


def test_a_tampered_beneficiary_fails(cli, statement_pdf, tmp_path):
    pdf = edit_printed_text(statement_pdf.read_bytes(), "ShopSato", "ShopSata")
    result = _verify(cli, pdf, tmp_path, code=1)
    assert f"printed vs chain: beneficiary: chain '{SATO}', printed 'Shop Sata 佐藤商店'" in (
        result.stderr
    )


def test_a_tampered_statement_block_fails(cli, statement_pdf, tmp_path):
    def more_units(block):
        block["retirements"][0]["units"] = 9000

    result = _verify(cli, edit_block(statement_pdf.read_bytes(), more_units), tmp_path, code=1)
    assert "block vs chain: retirements[1].units: chain '6000', block '9000'" in result.stderr
    assert "block vs printed: retirements[1].units" in result.stderr
    assert "printed vs chain" not in result.stderr


def test_a_consistent_forgery_fails_against_the_chain(cli, statement_pdf, tmp_path):
    """Printed text and block agree with each other; only the chain says otherwise."""

    def other_reason(block):
        block["retirements"][0]["reason"] = "Monthly consumptiom"

    pdf = edit_printed_text(statement_pdf.read_bytes(), "consumption", "consumptiom")
    result = _verify(cli, edit_block(pdf, other_reason), tmp_path, code=1)
    assert "block vs printed" not in result.stderr
    assert (
        "printed vs chain: retirements[1].reason: chain 'Monthly consumption', "
        "printed 'Monthly consumptiom'"
    ) in result.stderr
    assert "block vs chain: retirements[1].reason" in result.stderr


def test_verify_refuses_what_it_cannot_trust(cli, statement_pdf, registered, tmp_path):
    other = str(registered.members.address)
    result = cli("verify", "statement", str(statement_pdf), "--zcv", other, code=1)
    assert f"the trusted ZCV is {other}" in result.stderr
    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    blank.write(buffer)
    result = _verify(cli, buffer.getvalue(), tmp_path, code=1)
    assert "no /ZcxStatement statement block; not a ZCX statement" in result.stderr
    result = _verify(
        cli, edit_block(statement_pdf.read_bytes(), lambda b: b.pop("retirements")), tmp_path, 1
    )
    assert "statement block: KeyError 'retirements'" in result.stderr
    (tmp_path / "not.pdf").write_text("hello")
    result = cli("verify", "statement", str(tmp_path / "not.pdf"), code=1)
    assert "file: not a readable PDF" in result.stderr


def test_monthly_pdf_verifies_and_html_is_written(
    cli, statement_scenario, registered, bob, tmp_path
):
    pdf = tmp_path / "sato.pdf"
    month = statement_scenario["month"]
    result = cli("statements", "beneficiary", SATO, "--month", month, "--out", str(pdf))
    assert f"{SATO} {month}, retirements 1, 2" in result.stdout
    assert "retirements 1, 2" in cli("verify", "statement", str(pdf)).stdout
    # A later retirement for the same month: the issued statement stays true as of its block.
    start, end = month_bounds(month)
    registered.zcv.retire(200, SATO, "Late entry", start, end, sender=bob)
    assert "retirements 1, 2" in cli("verify", "statement", str(pdf)).stdout
    later = tmp_path / "sato-later.pdf"
    result = cli("statements", "beneficiary", SATO, "--month", month, "--out", str(later))
    assert "retirements 1, 2, 5" in result.stdout
    html = tmp_path / "sato.html"
    cli("statements", "beneficiary", SATO, "--month", month, "--out", str(html))
    assert "Monthly retirement statement" in html.read_text(encoding="utf-8")


def test_statements_cli_bad_input(cli, tmp_path):
    out = str(tmp_path / "x.pdf")
    assert "no retirement 99" in cli("statements", "retirement", "99", "--out", out, code=1).stderr
    bad_month = cli("statements", "beneficiary", SATO, "--month", "2026-13", "--out", out, code=2)
    assert "--month" in bad_month.stderr and "not YYYY-MM" in bad_month.stderr
    bad_out = cli("statements", "retirement", "1", "--out", str(tmp_path / "x.txt"), code=2)
    assert "end it in .pdf or .html" in bad_out.stderr
    bad_tz = cli("statements", "retirement", "1", "--out", out, "--tz", "Mars/Base", code=2)
    assert "not an IANA time zone" in bad_tz.stderr
    assert not (tmp_path / "x.pdf").exists() and not (tmp_path / "x.txt").exists()


def test_groups_are_registered_lazily():
    assert COMMAND_GROUPS["statements"][0] == "zcx.statements.cli:statements"
    assert COMMAND_GROUPS["verify"][0] == "zcx.statements.cli:verify"


def test_a_statement_printed_before_a_revocation_no_longer_verifies(
    cli, statement_pdf, registered, operator, tmp_path
):
    """Fraud found later: the operator revokes a certificate the retirement used. The old PDF
    still says 'Valid', the chain now says 'Revoked', and verify says so (this test's chain
    changes are rolled back afterwards)."""
    certificate_id = int(registered.zcv.retirement(1).certificateIds[0])
    registered.zcv.revokeCertificate(certificate_id, "meter tampering", sender=operator)
    result = cli("verify", "statement", str(statement_pdf), code=1)
    field = f"retirements[1].certificates[{certificate_id}]"
    assert (
        f"printed vs chain: {field}.status: chain '取消 Revoked', printed '有効 Valid'"
    ) in result.stderr
    assert f"block vs chain: {field}.revoked: chain 'True', block 'False'" in result.stderr


def test_one_printer_prints_many_statements_that_verify(reader):
    from zcx.statements import PdfPrinter, verify_pdf

    statements = [retirement_statement(reader, i, verify_base=BASE) for i in (1, 2, 3)]
    with PdfPrinter() as printer:
        pdfs = [printer.print(s) for s in statements]
    results = [verify_pdf(pdf, reader) for pdf in pdfs]
    assert [r.mismatches for r in results] == [[], [], []]
    assert [r.statement.retirements[0].id for r in results] == [1, 2, 3]


# ---------------------------------------------------------------------------- the comparator


_free_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40
)


@st.composite
def _statements(draw) -> Statement:
    use = CertificateUse(
        id=draw(st.integers(1, 10**6)),
        meter=draw(st.text("ABCDEFGHIJ-0123456789", min_size=1, max_size=20)),
        owner_name=draw(_free_text),
        method=draw(st.sampled_from(["Solar", "Wind", "Hydro"])),
        zone=draw(st.sampled_from(["TEPCO-13", "KEPCO-27"])),
        capacity_w=draw(st.integers(1, 10**9)),
        period_start=1_790_000_000,
        period_end=1_790_003_600,
        issued_at=1_790_010_000,
        wh=draw(st.integers(1, 10**12)),
        units=draw(st.integers(1, 10**12)),
        units_used=draw(st.integers(1, 10**12)),
    )
    entry = RetirementEntry(
        id=draw(st.integers(1, 10**6)),
        holder="0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        beneficiary=draw(_free_text.filter(str.strip)),
        reason=draw(_free_text),
        consumption_start=1_793_458_800,
        consumption_end=1_796_050_800,
        units=draw(st.integers(1, 10**12)),
        certificates=(use,),
        txn_hash="0x" + "ab" * 32,
        block_number=draw(st.integers(1, 10**9)),
        block_hash="0x" + "cd" * 32,
        block_time=1_790_030_000,
    )
    return Statement("retirement", 31337, entry.holder, entry.beneficiary, (entry,))


@given(statement=_statements(), breaks=st.lists(st.sampled_from([" ", "\n", "  \n"]), min_size=1))
def test_printed_text_matches_its_layout_whatever_the_line_breaks(statement, breaks):
    tokens = [value for _, value in layout(statement).tokens()]
    printed = "".join(t + breaks[i % len(breaks)] for i, t in enumerate(tokens))
    assert compare_printed(layout(statement), printed, "check") == []


@given(statement=_statements(), data=st.data())
def test_any_changed_digit_of_a_figure_is_named(statement, data):
    rows = [row for section in layout(statement).sections for row in section.rows]
    row = data.draw(st.sampled_from([r for r in rows if any(c.isdigit() for c in r.value)]))
    positions = [i for i, c in enumerate(row.value) if c.isdigit()]
    at = data.draw(st.sampled_from(positions))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != row.value[at]]))
    forged = row.value[:at] + digit + row.value[at + 1 :]
    printed = "\n".join(
        forged if field == row.field else value for field, value in layout(statement).tokens()
    )
    found = compare_printed(layout(statement), printed, "printed vs chain")
    assert [(m.field, m.expected) for m in found] == [(row.field, row.value)]
    assert squeeze(found[0].found) == squeeze(forged)


def test_statement_agrees_with_the_audit_trail_from_events(reader, statement_scenario, chain):
    """Two independent paths: the statement reads records by view calls; the audit replays
    events. They name the same certificates, units, meters and Wh (the events carry no owner
    name)."""
    from zcx.audit.ledger import build_ledger
    from zcx.audit.report import certificate_trail
    from zcx.audit.run import ledger_contracts

    abis = abis_from_manifest()
    deployment = deployments.load(chain.chain_id, statement_scenario["deployments"])
    ledger = build_ledger(
        networks.provider.web3,
        chain.chain_id,
        ledger_contracts(deployment, abis),
        abis,
        0,
        with_state=False,
    )
    for retirement_id in (1, 2):
        (entry,) = retirement_statement(reader, retirement_id).retirements
        trail = certificate_trail(ledger, retirement_id)["consumed"]
        assert [
            (row.certificate_id, row.units_retired, row.meter, row.wh) for row in trail.itertuples()
        ] == [(c.id, c.units_used, c.meter, c.wh) for c in entry.certificates]
        assert set(trail["beneficiary"]) == {entry.beneficiary}
