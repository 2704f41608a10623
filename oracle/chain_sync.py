"""Learning what the chain recorded from the registry's events, whoever submitted it.

Every oracle (leader or follower) reads the registry's ReadingRecorded and BatchApplied logs in
pages of blocks from the last block it has seen (kept in the store, so a restart resumes where it
stopped), as zcx/audit/events.py does. A reading of our store recorded on chain becomes
`confirmed`, even if a batch we never saw carried it; a batch of ours whose digest was applied is
settled from its receipt. The leader syncs before it forms a batch, so it never batches a
reading that is already on chain (issue 10: a follower the leader never asked kept its readings
`accepted`, then, restarted as leader, batched readings already on chain and stalled).

Reorgs are not handled: the sync reads up to the node's latest block (`sync_lag_blocks` behind
it when set), which suits Anvil and a chain with fast finality.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from oracle.chain import BATCH_APPLIED, READING_RECORDED, Chain, ChainUnavailable, RpcError
from zcx.ids import meter_label

log = logging.getLogger(__name__)

SYNC_META = "chain_sync_block"  # the last block whose registry events the store has applied


@dataclass
class RegistryEvents:
    """The registry events of a block range that matter to the store, decoded."""

    # (meter label, start, (end, gen, cons, sold, purchased), tx hash "0x..", block)
    recorded: list[tuple[str, int, tuple[int, ...], str, int]] = field(default_factory=list)
    # (digest, tx hash)
    applied: list[tuple[bytes, bytes]] = field(default_factory=list)


def decode_events(logs: Sequence[dict[str, Any]]) -> RegistryEvents:
    """ReadingRecorded / BatchApplied entries of raw eth_getLogs results."""
    out = RegistryEvents()
    for entry in logs:
        topics = entry.get("topics") or []
        if not topics:
            continue
        topic0 = bytes.fromhex(topics[0][2:])
        tx = str(entry["transactionHash"])
        block = int(entry["blockNumber"], 16)
        if topic0 == READING_RECORDED and len(topics) > 1:
            try:
                label = meter_label(bytes.fromhex(topics[1][2:]))
            except UnicodeDecodeError:
                continue  # not a meter label this oracle could hold
            data = bytes.fromhex(entry["data"][2:])
            start, end, gen, cons, sold, bought = (
                int.from_bytes(data[i : i + 32], "big") for i in range(0, 192, 32)
            )
            out.recorded.append((label, start, (end, gen, cons, sold, bought), tx, block))
        elif topic0 == BATCH_APPLIED and len(topics) > 1:
            out.applied.append((bytes.fromhex(topics[1][2:]), bytes.fromhex(tx[2:])))
    return out


class ChainFollower:
    """Pages through the registry's logs from the store's last seen block to the head."""

    def __init__(self, chain: Chain, page_blocks: int = 2_000, lag_blocks: int = 0) -> None:
        self.chain = chain
        self.page_blocks = page_blocks
        self.lag_blocks = lag_blocks

    def head(self) -> int:
        return max(int(self.chain.rpc("eth_blockNumber", []), 16) - self.lag_blocks, 0)

    def fetch(self, first: int, last: int) -> list[dict[str, Any]]:
        """Raw registry logs of blocks first..last; a page the node refuses (too many
        results, timeout) is halved, down to a single block."""
        params = {
            "address": self.chain.registry_address,
            "fromBlock": hex(first),
            "toBlock": hex(last),
            "topics": [["0x" + READING_RECORDED.hex(), "0x" + BATCH_APPLIED.hex()]],
        }
        try:
            return list(self.chain.rpc("eth_getLogs", [params]))
        except (RpcError, ChainUnavailable) as exc:
            if first >= last:
                raise ChainUnavailable(f"eth_getLogs refused block {first}: {exc}") from exc
            middle = (first + last) // 2
            log.info("eth_getLogs %d..%d refused (%s); halving the page", first, last, exc)
            return self.fetch(first, middle) + self.fetch(middle + 1, last)

    def pages(self, after: int, head: int) -> list[tuple[int, int]]:
        """Block ranges (inclusive) after `after` up to `head`."""
        return [
            (start, min(start + self.page_blocks - 1, head))
            for start in range(after + 1, head + 1, self.page_blocks)
        ]
