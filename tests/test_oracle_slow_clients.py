"""Slow clients (issue 10, point 5). An oracle process with an open-files limit of 1,024 gets
1,100 half-sent requests (heads without their end, heads with a promised body that never
comes): a valid POST is still answered 202 at once, the half-sent ones are closed by the
header/body deadlines, a client trickling its head a byte at a time is closed too (uvicorn's
keep-alive timer alone would wait forever), and the log stays small."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time

import httpx
import pytest
from oracle_fixtures import INTERVAL, own_devnet, wait_until, wire

from oracle.devchain import free_port
from oracle.store import Store

METERS = ["SLOW-A", "SLOW-B"]
ATTACKERS = 1_100
NOFILE = 1_024
DEADLINE_S = 3.0
LOG_LIMIT = 1_000_000


@pytest.fixture
def devnet(tmp_path, oracle_keys):
    with own_devnet(tmp_path, oracle_keys[0], METERS) as chain_parts:
        yield chain_parts


def _limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def _room_for_attackers() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = ATTACKERS + 400
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"this test needs {wanted} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _half_sent(port: int, i: int, token: str) -> socket.socket | None:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return None  # refused or dropped at once: also a defence, not a failure
    head = "POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if i % 3 == 0:  # a gateway's complete head promising a body that never comes
        head += f"Content-Length: 100000\r\nAuthorization: Bearer {token}\r\n\r\n"
        head += '{"readings": ['
    try:
        s.sendall(head.encode())
    except OSError:
        s.close()
        return None
    return s


def _closed_by_server(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset


def test_half_sent_requests_do_not_lock_out_a_gateway(devnet, tmp_path, oracle_keys):
    anvil, record, w3, epoch = devnet
    _room_for_attackers()
    db = tmp_path / "oracle.db"
    store = Store(db)
    token = store.add_gateway("gw")
    store.bind("gw", METERS)
    store.close()
    port = free_port()
    env = {
        **os.environ,
        "ZCX_ORACLE_DB_PATH": str(db),
        "ZCX_ORACLE_RPC_URL": anvil.url,
        "ZCX_ORACLE_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "ZCX_ORACLE_DEV_PRIVATE_KEY": oracle_keys[0].hex(),
        "ZCX_ORACLE_HEADER_TIMEOUT_S": str(DEADLINE_S),
        "ZCX_ORACLE_BODY_TIMEOUT_S": str(DEADLINE_S),
        "ZCX_ORACLE_BATCH_MAX_AGE_S": "0.2",
    }
    log_path = tmp_path / "oracle.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oracle", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_open_files,  # noqa: PLW1509 - only sets the child's rlimit
        )
    attackers: list[socket.socket] = []
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 60, "the oracle to serve")
        assert resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)[0] == NOFILE

        began = time.monotonic()
        for i in range(ATTACKERS):
            s = _half_sent(port, i, token)
            if s is not None:
                attackers.append(s)
        assert len(attackers) > 0.5 * ATTACKERS  # most got in: the flood is real

        body = json.dumps({"readings": [wire(m, epoch) for m in METERS]})
        r = httpx.post(
            f"{url}/v1/readings",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=10,
        )
        assert r.status_code == 202, r.text
        # The valid POST got in while the half-sent requests were still within their deadline.
        assert time.monotonic() - began < DEADLINE_S + 5

        # A client trickling its head a byte at a time is closed at the header deadline.
        trickle = socket.create_connection(("127.0.0.1", port), timeout=5)
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        closed_at = None
        t0 = time.monotonic()
        for byte in request:
            try:
                trickle.send(bytes([byte]))
            except OSError:
                closed_at = time.monotonic() - t0
                break
            if _closed_by_server(trickle):
                closed_at = time.monotonic() - t0
                break
            trickle.setblocking(True)
            time.sleep(0.25)
            if time.monotonic() - t0 > DEADLINE_S + 10:
                break
        trickle.close()
        assert closed_at is not None and closed_at < DEADLINE_S + 5, closed_at

        # Every half-sent request has been closed by now (deadline or connection cap).
        still_open = [s for s in attackers if not _closed_by_server(s)]
        assert not still_open, f"{len(still_open)} half-sent requests still open"

        r = httpx.post(
            f"{url}/v1/readings",
            content=json.dumps({"readings": [wire(m, epoch + INTERVAL) for m in METERS]}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=10,
        )
        assert r.status_code == 202, r.text
        wait_until(lambda: Store(db).state_counts() == {"confirmed": 4}, 60, "confirmations")
        assert proc.poll() is None
    finally:
        for s in attackers:
            s.close()
        proc.terminate()
        proc.wait(20)
    size = log_path.stat().st_size
    assert size < LOG_LIMIT, (size, log_path.read_text()[-2000:])
    assert log_path.read_text().count("Traceback") <= 5
