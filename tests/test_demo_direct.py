"""The demo's labelled FALLBACK delivery (no oracle service): its fast EIP-712 digest matches
zcx.eip712 and the registry accepts its batches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from zcx.demo import DemoOptions, domain_separator, fast_batch_digest, run_demo
from zcx.eip712 import UINT64_MAX, Reading, batch_digest
from zcx.ids import meter_id

u64 = st.integers(0, UINT64_MAX)
readings = st.lists(
    st.builds(
        Reading,
        st.sampled_from([meter_id("TKY-HPB-001"), meter_id("OSA-GEH-002")]),
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=25, deadline=None)
@given(readings, st.integers(1, 2**32))
def test_fast_digest_equals_eip712_batch_digest(batch, chain_id):
    registry = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
    fast = fast_batch_digest(batch, domain_separator(chain_id, registry))
    assert fast == batch_digest(batch, chain_id, registry)


def test_direct_fallback_is_labelled_and_complete(tmp_path):
    options = DemoOptions(
        members=3,
        days=1,
        seed=3,
        out_dir=tmp_path / "report",
        deployments_dir=tmp_path / "deployments",
        delivery="direct",
        write_csv=False,
    )
    result = run_demo(options, Console(quiet=True))
    assert result.delivery == "direct"
    assert result.delivery_note.startswith("FALLBACK")
    assert "FALLBACK" in result.report_path.read_text()
    assert len(result.chain_readings) == 3 * 48
    assert all(result.checks.values()), result.checks
