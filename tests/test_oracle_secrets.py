"""Secrets (issue 10, point 6). Hosted RPC providers put the API key in the URL's path or query
(some in user info): /healthz and the log show the URL only as scheme://host:port/…, whatever
the error text of the HTTP library quotes. The store, its WAL/SHM files, the log file and
keystores are created 0600 even when the process's umask would allow more."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys

import httpx
import pytest
from oracle_fixtures import wait_until

from oracle.chain import Chain, ChainUnavailable
from oracle.devchain import free_port
from oracle.redact import RepeatFilter, Scrubber, ScrubFilter, redact_url, url_secrets
from oracle.signer import write_keystore
from oracle.store import Store

SECRETS = ("alice", "hunter2pw", "SECRETKEY123", "QUERYSECRET456")


def _secret_url(port: int) -> str:
    return f"http://alice:hunter2pw@127.0.0.1:{port}/v3/SECRETKEY123?apikey=QUERYSECRET456"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
        ("https://mainnet.example.io/v3/abc123", "https://mainnet.example.io/…"),
        ("https://node.example.io?key=abc123", "https://node.example.io/…"),
        ("https://user:pw@node.example.io:8443", "https://node.example.io:8443/…"),
        ("http://[::1]:8545/k/abc", "http://[::1]:8545/…"),
        ("wss://ws.example.io/ws/v3/abc#frag", "wss://ws.example.io/…"),
        ("not a url", "<unparseable URL>"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_chain_errors_never_quote_the_secret_parts():
    port = free_port()  # nothing listens: requests quotes the path in its error text
    chain = Chain(_secret_url(port), deployments_dir=os.devnull, timeout_s=2)
    with pytest.raises(ChainUnavailable) as raised:
        chain.rpc("eth_chainId", [])
    text = str(raised.value)
    assert f"http://127.0.0.1:{port}/…" in text
    assert not [s for s in SECRETS if s in text], text


def test_log_lines_and_tracebacks_are_scrubbed():
    url = _secret_url(8545)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(ScrubFilter(Scrubber(url_secrets(url))))
    logger = logging.getLogger("test.secrets")
    logger.addHandler(handler)
    try:
        logger.warning("posting to %s failed", url)
        try:
            raise OSError("Max retries exceeded with url: /v3/SECRETKEY123?apikey=QUERYSECRET456")
        except OSError:
            logger.exception("chain call failed")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 2
    assert not [s for r in records for s in SECRETS if s in r], records


def test_repeat_filter_bounds_a_flood_of_accept_errors(caplog):
    """asyncio's accept loop reports EMFILE through the loop's exception handler (logger
    "asyncio"): a flood is written once per interval, with a count of those suppressed."""
    import asyncio

    flood = RepeatFilter(interval_s=60)
    logging.getLogger("asyncio").addFilter(flood)
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            for _ in range(5_000):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
        assert len([r for r in caplog.records if r.name == "asyncio"]) == 1
    finally:
        loop.close()
        logging.getLogger("asyncio").removeFilter(flood)


def test_store_wal_shm_and_keystore_are_private(tmp_path):
    old = os.umask(0)  # the widest umask: only the oracle's own modes protect the files
    try:
        db = tmp_path / "oracle.db"
        store = Store(db)
        store.add_gateway("gw")  # a write: the WAL and SHM files now exist
        for path in (db, tmp_path / "oracle.db-wal", tmp_path / "oracle.db-shm"):
            assert path.exists() and _mode(path) == 0o600, (path, oct(_mode(path)))
        store.close()
        key = tmp_path / "keys" / "oracle.json"
        write_keystore(key, "pw")
        assert _mode(key) == 0o600
        # A store file left world-readable (an older version, a copy) is made private.
        os.chmod(db, 0o644)
        Store(db).close()
        assert _mode(db) == 0o600
    finally:
        os.umask(old)


def test_running_oracle_shows_no_secret_and_writes_private_files(tmp_path):
    port = free_port()
    rpc_port = free_port()
    key = tmp_path / "key.json"
    write_keystore(key, "pw")
    log_file = tmp_path / "logs" / "oracle.log"
    db = tmp_path / "oracle.db"
    env = {
        **os.environ,
        "ZCX_ORACLE_DB_PATH": str(db),
        "ZCX_ORACLE_RPC_URL": _secret_url(rpc_port),
        "ZCX_ORACLE_RPC_TIMEOUT_S": "1",
        "ZCX_ORACLE_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "ZCX_ORACLE_KEYSTORE": str(key),
        "ZCX_ORACLE_KEYSTORE_PASSWORD": "pw",
        "ZCX_ORACLE_LOG_FILE": str(log_file),
        "ZCX_ORACLE_LIVENESS_CHECK_S": "0.2",
        "ZCX_ORACLE_BACKOFF_MAX_S": "0.2",
    }
    stdout = tmp_path / "stdout.log"
    with open(stdout, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oracle", "-v", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.umask(0),  # noqa: PLW1509 - only sets the child's umask
        )
    try:

        def health() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except httpx.HTTPError:
                assert proc.poll() is None, stdout.read_text()
                return None

        answer = wait_until(health, 60, "the oracle to serve")
        assert answer.status_code == 503
        detail = answer.json()["chain_detail"]
        assert f"http://127.0.0.1:{rpc_port}/…" in detail, detail
        wait_until(lambda: log_file.read_text().count("unreachable") >= 1, 30, "a chain error")
        httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5)
        for path in (db, db.with_name("oracle.db-wal"), db.with_name("oracle.db-shm"), log_file):
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
        shown = answer.text + log_file.read_text() + stdout.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert "cannot reach the chain node" in shown
    assert not [s for s in SECRETS if s in shown], shown[-3000:]
