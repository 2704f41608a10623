"""Hourly certificates (issue 12): what a day's claim costs per certificate issued.

    python bench/run.py --only hourly

A 5 kW rooftop-PV household with about 10 generating hours claims one day of 48 readings (its
previous day already claimed, so it holds ZCV and its registry/exchange slots are warm). The
claim passes the 48 readings as calldata, the exchange checks them against the registry's
evidence head, groups them per clock hour and issues one schema-2 certificate (and one lot) per
hour with generation.
"""

from __future__ import annotations

import logging
from typing import Any

from bench_gas import (
    NETWORK,
    _anvil_without_step_traces,
    _figure,
    _GasBench,
    compile_bench_contracts,
)

log = logging.getLogger(__name__)

INTERVAL = 1800
READINGS_PER_DAY = 48
CLAIM_PER_HOUR_TARGET = 40_000
# A clear late-autumn day of a 5 kW (DC) Tokyo roof, Wh per 30 minutes: 20 generating slots
# (10 hours, 07:00-17:00), peak 1.9 kWh per slot; self-consumption 300 Wh per slot, rest exported.
PV_SLOTS = {
    14: 60,
    15: 180,
    16: 380,
    17: 620,
    18: 900,
    19: 1150,
    20: 1400,
    21: 1600,
    22: 1780,
    23: 1900,
    24: 1900,
    25: 1780,
    26: 1600,
    27: 1400,
    28: 1150,
    29: 900,
    30: 620,
    31: 380,
    32: 180,
    33: 60,
}


def run() -> dict[str, dict[str, Any]]:
    from ape import networks
    from ape.logging import logger as ape_logger

    contract_types = compile_bench_contracts()
    with ape_logger.at_level("WARNING"), _anvil_without_step_traces():
        with networks.parse_network_choice(NETWORK):
            return _HourlyBench(contract_types).measure()


class _HourlyBench(_GasBench):
    def measure(self) -> dict[str, dict[str, Any]]:
        from zcx.deploy import deploy_all

        self.zcx, _ = deploy_all(self.admin, self.operator.address, self.oracle_addresses, 2)
        self.epoch = (self.chain.pending_timestamp - 30 * 86400) // 86400 * 86400
        self._register_members()
        (mid,) = self._register_meters(["BENCH-HOURLY-PV"], self.alice)
        self._submit([self._household(mid, slot) for slot in range(READINGS_PER_DAY)])
        self._claim(mid, self.alice)  # day 1: warms the meter's slots and Alice's account
        day2 = range(READINGS_PER_DAY, 2 * READINGS_PER_DAY)
        self._submit([self._household(mid, slot) for slot in day2])
        receipt = self._claim(mid, self.alice)
        certificates = len(receipt.decode_logs(self.zcx.zcv.CertificateIssued))
        if certificates != len(PV_SLOTS) // 2:
            raise RuntimeError(
                f"expected {len(PV_SLOTS) // 2} hourly certificates, got {certificates}"
            )
        gas = int(receipt.gas_used)
        note = (
            f"a 5 kW household's day (48 readings as calldata, {len(PV_SLOTS)} generating "
            f"slots = {certificates} clock hours) claimed by its owner, previous day claimed: "
            f"total {gas:,} gas / {certificates} certificates issued"
        )
        return {
            "claim_gas_per_hour_certificate": _figure(
                round(gas / certificates), "gas/certificate", note, f"<= {CLAIM_PER_HOUR_TARGET:,}"
            ),
            "claim_gas_day_hourly": _figure(gas, "gas", note),
        }

    def _household(self, mid: bytes, slot: int) -> Any:
        from zcx.eip712 import Reading

        start = self.epoch + slot * INTERVAL
        generated = PV_SLOTS.get(slot % READINGS_PER_DAY, 0)
        consumed = 300
        sold = max(generated - consumed, 0)
        bought = max(consumed - generated, 0)
        return Reading(mid, start, start + INTERVAL, generated, consumed, sold, bought)
