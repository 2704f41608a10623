"""Helpers for the audit tests: a deployment record of the test chain, daytime solar readings,
a standard scenario (readings, a rejected reading, claims, transfer, payment, retirements) and a
loopback JSON-RPC proxy that can lie or refuse, as a hostile node would."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conftest import INTERVAL, reading
from registry_helpers import claim_hourly

from zcx.deployments import Deployment
from zcx.eip712 import Reading
from zcx.ids import meter_id


def deployment_of(contracts: Any, chain: Any) -> Deployment:
    """What `ape run deploy` would record for the conftest deployment."""
    first = min(
        chain.contracts.get_creation_metadata(c.address).block
        for c in (contracts.members, contracts.registry, contracts.zcv, contracts.exchange)
    )
    return Deployment(
        chain_id=chain.chain_id,
        network="ethereum:local:test",
        deployment_block=first,
        deployment_block_hash=chain.blocks[first].hash.hex(),
        contracts=contracts.addresses(),
    )


def day_start(epoch: int) -> int:
    """01:00 UTC (10:00 JST) of the epoch's day: the sun is up in Japan for hours after it."""
    return epoch // 86400 * 86400 + 3600


def solar(label: str, start: int, gen: int, cons: int = 300) -> Reading:
    sold = max(0, gen - cons)
    return reading(label, start, gen=gen, cons=cons, sold=sold, bought=max(0, cons - gen))


def standard_scenario(
    zcx: Any, submit: Callable[..., Any], alice: Any, bob: Any, carol: Any, epoch: int
) -> dict[str, Any]:
    """Two batches (one with a rejected overlapping reading), claims, transfer, pay, retirements."""
    t0 = day_start(epoch)
    batch1 = [solar("ALICE-PV", t0 + i * INTERVAL, 1200 + 50 * i) for i in range(4)]
    batch1 += [solar("BOB-PV", t0 + i * INTERVAL, 12000 + 500 * i, 4000) for i in range(4)]
    submit(batch1)
    alice_id, bob_id = meter_id("ALICE-PV"), meter_id("BOB-PV")
    claim_hourly(zcx.exchange, zcx.registry, alice_id, sender=alice)  # certificates 1-2
    # Batch 2: an overlapping (replayed) reading is rejected; the rest are recorded.
    batch2 = [
        solar("ALICE-PV", t0, 999),
        solar("ALICE-PV", t0 + 4 * INTERVAL, 1500),
        solar("BOB-PV", t0 + 4 * INTERVAL, 15000, 4000),
    ]
    submit(batch2)
    claim_hourly(zcx.exchange, zcx.registry, alice_id, sender=alice)  # certificate 3
    claim_hourly(zcx.exchange, zcx.registry, bob_id, sender=bob)  # certificates 4-6
    zcx.zcv.transfer(bob, 2000, sender=alice)
    zcx.zcv.pay(carol, 300, b"\x01" * 32, sender=bob)
    zcx.zcv.retire(1000, "Bob Shoten shop", "FY2026 Q4", epoch, epoch + 86400, sender=bob)
    zcx.zcv.retire(200, "Carol cafe", "March", epoch, epoch + 86400, sender=carol)
    return {"t0": t0, "batches": [batch1, batch2], "rejected": batch2[0]}


class RpcProxy:
    """A JSON-RPC proxy on 127.0.0.1 in front of the test node. `rewrite(method, params, result)`
    may change results (a lying node); `max_log_blocks` makes it refuse wide eth_getLogs ranges
    as public providers do."""

    def __init__(
        self,
        upstream: str,
        rewrite: Callable[[str, Any, Any], Any] | None = None,
        max_log_blocks: int | None = None,
    ) -> None:
        self.upstream = upstream
        self.rewrite = rewrite
        self.max_log_blocks = max_log_blocks
        self.calls: list[str] = []
        self.refused = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(body)
                reply = proxy.handle(request, body)
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, request: dict[str, Any], body: bytes) -> dict[str, Any]:
        method = request["method"]
        self.calls.append(method)
        if method == "eth_getLogs" and self.max_log_blocks is not None:
            f = request["params"][0]
            if int(f["toBlock"], 16) - int(f["fromBlock"], 16) + 1 > self.max_log_blocks:
                self.refused += 1
                return {
                    "jsonrpc": "2.0",
                    "id": request["id"],
                    "error": {"code": -32005, "message": "query exceeds max block range"},
                }
        upstream = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(upstream, timeout=60) as response:
            reply = json.loads(response.read())
        if self.rewrite is not None and "result" in reply:
            reply["result"] = self.rewrite(method, request.get("params"), reply["result"])
        return reply

    def __enter__(self) -> RpcProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
