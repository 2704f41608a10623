"""A newcomer's path, followed as the README says: mistakes end in one clear line, never in a
traceback or a record of a chain that is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(180)
def test_deploy_refuses_apes_throwaway_anvil(tmp_path):
    """No node at the host: Ape would start a temporary Anvil; deploy refuses and writes nothing."""
    env = {
        **os.environ,
        "APE_FOUNDRY_HOST": f"http://127.0.0.1:{_free_port()}",
        "ZCX_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
    }
    ape = Path(sys.executable).with_name("ape")
    run = subprocess.run(
        [str(ape), "run", "deploy", "--network", "ethereum:local:foundry"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "anvil --port 8545" in out and "Traceback" not in out
    assert not (tmp_path / "deployments").exists()


def test_deployment_records_live_under_the_working_directory():
    from zcx import deployments

    assert not deployments.DEFAULT_DIR.is_absolute()
    assert "site-packages" not in str(deployments.path_for(1).resolve())


def test_a_bad_network_is_a_usage_error():
    """Exit 2 with a one-line hint, before any connection (so no retries to any public RPC)."""
    run = subprocess.run(
        [str(Path(sys.executable).with_name("zcx")), "holder", "balance", "TEST::3"]
        + ["--network", "ethereum:nowhere:foo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "unknown network 'ethereum:nowhere:foo'" in run.stderr
    assert "Traceback" not in run.stderr
