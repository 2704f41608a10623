"""End-to-end path on the contracts: signed readings -> claim -> transfer -> retire."""

from conftest import INTERVAL, reading

from zcx.eip712 import batch_digest
from zcx.ids import meter_id


def test_batch_digest_parity(registered, chain, epoch):
    readings = [reading("ALICE-PV", epoch + i * INTERVAL) for i in range(3)]
    python = batch_digest(readings, chain.chain_id, str(registered.registry.address))
    onchain = registered.registry.batchDigest([r.as_tuple() for r in readings])
    assert bytes(onchain) == python


def test_meter_to_retirement(registered, submit, alice, bob, epoch):
    readings = [reading("ALICE-PV", epoch + i * INTERVAL, gen=1200) for i in range(4)]
    tx = submit(readings)
    assert len(tx.decode_logs(registered.registry.ReadingRecorded)) == 4
    mid = meter_id("ALICE-PV")
    assert registered.registry.unclaimedWh(mid) == 4800

    registered.exchange.claim(registered.registry, mid, sender=alice)
    assert registered.zcv.balanceOf(alice) == 4800  # 4.8 kWh = 4.800 ZCV
    assert registered.registry.unclaimedWh(mid) == 0
    cert = registered.zcv.certificate(1)
    assert cert.wh == 4800 and cert.periodStart == epoch and cert.periodEnd == epoch + 4 * INTERVAL

    registered.zcv.transfer(bob, 1000, sender=alice)
    assert [tuple(lot) for lot in registered.zcv.lotsOf(bob, 0, 10)] == [(1, 1000)]
    registered.zcv.retire(500, "Bob Shoten shop", "FY2026 Q4", epoch, epoch + 86400, sender=bob)
    assert registered.zcv.counters(bob).amortized == 500
    assert (
        registered.zcv.totalSupply() + registered.zcv.totalRetired() == registered.zcv.totalIssued()
    )
