"""What an hourly claim sends: the meter's readings recorded since its previous claim.

`ValueExchange.claim(registry, meter, readings)` folds the readings onto the registry's evidence
head at the previous claim and requires the head now, so they must be exactly the meter's
`ReadingRecorded` logs after its last `GenerationClaimed` log, in log order (recording order, not
time order: a late gap-filler comes where it landed). Works with any web3 instance (Ape's
`chain.provider.web3` or a plain one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

READING_RECORDED = keccak(text="ReadingRecorded(bytes32,uint64,uint64,uint64,uint64,uint64,uint64)")
GENERATION_CLAIMED = keccak(text="GenerationClaimed(bytes32,address,uint256,uint64,uint64)")
HOUR = 3600


@dataclass(frozen=True)
class ClaimReading:
    """One recorded reading, as the contracts' `Reading` struct orders its fields."""

    meter_id: bytes
    start: int
    end: int
    generated_wh: int
    consumed_wh: int
    sold_wh: int
    purchased_wh: int

    def as_tuple(self) -> tuple[bytes, int, int, int, int, int, int]:
        return (
            self.meter_id,
            self.start,
            self.end,
            self.generated_wh,
            self.consumed_wh,
            self.sold_wh,
            self.purchased_wh,
        )


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _position(log: Any) -> tuple[int, int]:
    return int(log["blockNumber"]), int(log["logIndex"])


def readings_since_claim(web3: Any, registry: str, meter: bytes) -> list[ClaimReading]:
    """The meter's readings recorded since its last claim, in recording order."""
    meter_topic = _hex(meter.rjust(32, b"\0"))
    claims = web3.eth.get_logs(
        {
            "address": registry,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": [_hex(GENERATION_CLAIMED), meter_topic],
        }
    )
    after = max((_position(log) for log in claims), default=(-1, -1))
    logs = web3.eth.get_logs(
        {
            "address": registry,
            "fromBlock": max(after[0], 0),
            "toBlock": "latest",
            "topics": [_hex(READING_RECORDED), meter_topic],
        }
    )
    fresh = sorted((log for log in logs if _position(log) > after), key=_position)
    return [_decode(meter, bytes(log["data"])) for log in fresh]


def _decode(meter: bytes, data: bytes) -> ClaimReading:
    words = [int.from_bytes(data[i : i + 32], "big") for i in range(0, 192, 32)]
    return ClaimReading(meter, *words)


def claim_args(web3: Any, registry: str, meter: bytes) -> tuple[str, bytes, list[tuple]]:
    """The arguments of `ValueExchange.claim` for `meter` through `registry`."""
    readings = readings_since_claim(web3, registry, meter)
    return registry, meter, [r.as_tuple() for r in readings]


def hours_with_generation(readings: list[ClaimReading]) -> int:
    """Distinct clock hours among readings with generation (an upper bound on certificates)."""
    return len({r.start - r.start % HOUR for r in readings if r.generated_wh > 0})
