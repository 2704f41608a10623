"""Starting the portal as its own process (the demo's --portal; tests and benches do the same).

The process leads its own session so it outlives the command that started it (the demo's
--keep-chain) and can be stopped with one `kill <pid>`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


class PortalStartError(RuntimeError):
    """The portal process exited or did not answer in time; the message names its log."""


@dataclass(frozen=True)
class PortalProcess:
    pid: int
    url: str
    log_path: Path


def start_portal(
    rpc_url: str,
    deployments_dir: Path,
    db_path: Path,
    log_path: Path,
    port: int,
    host: str = "127.0.0.1",
    timeout_s: float = 600.0,
) -> PortalProcess:
    """Runs `zcx portal serve` detached and waits until it answers."""
    command = [
        sys.executable,
        "-c",
        "from zcx.cli import main; main()",
        "portal",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--rpc-url",
        rpc_url,
        "--deployments",
        str(deployments_dir),
        "--db",
        str(db_path),
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            command,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://{host}:{port}/"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PortalStartError(f"the portal exited with {process.returncode}; see {log_path}")
        try:
            if httpx.get(url, timeout=10).status_code == 200:
                return PortalProcess(process.pid, url, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.terminate()
    raise PortalStartError(f"the portal did not answer at {url} within {timeout_s:.0f} s")
