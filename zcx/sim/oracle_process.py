"""Runs the real oracle (the `oracle` package) as a child process on a free loopback port, and
provisions its gateways, tokens and meter bindings.

Provisioning writes the oracle's SQLite store through `oracle.store.Store` (the same code the
oracle's `gateways` CLI commands run) before the server starts, which is quicker than one CLI
process per gateway. The server itself is started as `python -m oracle serve`; its settings come
from ZCX_ORACLE_* environment variables (see oracle/settings.py).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from zcx.sim.gateway import Gateway

log = logging.getLogger(__name__)


class OracleUnavailable(RuntimeError):
    """The oracle package is missing, or its server did not come up."""


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def oracle_available() -> bool:
    """True when the oracle package (store and CLI) can be imported."""
    try:
        import oracle.cli  # noqa: F401
        import oracle.store  # noqa: F401
    except ImportError as exc:
        log.info("oracle package not usable: %s", exc)
        return False
    return True


def provision(db_path: Path, wanted: Mapping[str, Iterable[str]]) -> list[Gateway]:
    """Creates each gateway with a fresh token and binds its meters. Returns the gateways with
    their tokens (the only time a token is seen in clear)."""
    from oracle.store import Store

    store = Store(db_path)
    try:
        gateways = []
        for name, meters in wanted.items():
            meters = tuple(meters)
            token = store.add_gateway(name)
            store.bind(name, meters)
            gateways.append(Gateway(name, token, meters))
        return gateways
    finally:
        store.close()


@dataclass
class OracleProcess:
    """The oracle server as a child process. Use as a context manager; it is always stopped."""

    rpc_url: str
    db_path: Path
    deployments_dir: Path
    dev_private_key: str
    log_path: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "ZCX_ORACLE_RPC_URL": self.rpc_url,
                "ZCX_ORACLE_DB_PATH": str(self.db_path),
                "ZCX_ORACLE_DEPLOYMENTS_DIR": str(self.deployments_dir),
                "ZCX_ORACLE_HOST": "127.0.0.1",
                "ZCX_ORACLE_PORT": str(self.port),
                # Local devnet only: the oracle refuses a plain key on any chain but 31337.
                "ZCX_ORACLE_DEV_PRIVATE_KEY": self.dev_private_key,
                "ZCX_ORACLE_MAX_FUTURE_S": "120",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout_s: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        command = [
            sys.executable,
            "-m",
            "oracle",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        log.info("starting oracle: %s (log %s)", " ".join(command), self.log_path)
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env(),
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the oracle itself
        )
        out.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OracleUnavailable(
                    f"oracle exited with {self.process.returncode}; see {self.log_path}:\n"
                    + self.tail()
                )
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=2.0)
                if response.status_code == 200 and response.json().get("chain"):
                    return
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.3)
        self.stop()
        raise OracleUnavailable(f"oracle not healthy after {timeout_s}s; see {self.log_path}")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, grace_s: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # The child leads its own session (start_new_session): signal its whole group, which
        # holds only what it started (npm's anvil wrapper runs the anvil binary as a child).
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            log.warning("oracle did not stop in %ss; killing it", grace_s)
            _signal_group(process, signal.SIGKILL)
            process.wait(5)

    def __enter__(self) -> OracleProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def meter_statuses(self, meter: str, token: str) -> list[dict[str, object]]:
        """The oracle's status of each of the meter's readings (needs its gateway's token)."""
        response = httpx.get(
            f"{self.base_url}/v1/meters/{meter}/readings",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
        )
        response.raise_for_status()
        return list(response.json().get("readings", []))
