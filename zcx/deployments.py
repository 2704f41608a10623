"""deployments/<chain_id>.json: where the contracts live on one chain, and from which block."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Relative to the working directory (the project folder), never to the installed package: a
# `pip install` of zcx must not read or write deployment records inside site-packages.
DEFAULT_DIR = Path(os.environ.get("ZCX_DEPLOYMENTS_DIR", "deployments"))
CONTRACT_NAMES = ("MemberRegistry", "GenerationRegistry", "ZeroCarbonValue", "ValueExchange")


@dataclass
class Deployment:
    chain_id: int
    network: str
    deployment_block: int
    deployment_block_hash: str
    contracts: dict[str, str]
    roles: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    schema_version: int = 1

    def address(self, name: str) -> str:
        try:
            return self.contracts[name]
        except KeyError:
            raise KeyError(
                f"deployment for chain {self.chain_id} has no contract {name!r}"
            ) from None


def path_for(chain_id: int, directory: Path = DEFAULT_DIR) -> Path:
    return directory / f"{chain_id}.json"


def load(chain_id: int, directory: Path = DEFAULT_DIR) -> Deployment:
    file = path_for(chain_id, directory)
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: run `ape run deploy` on this network first")
    data = json.loads(file.read_text())
    return Deployment(**data)


def save(deployment: Deployment, directory: Path = DEFAULT_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    file = path_for(deployment.chain_id, directory)
    tmp = file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(deployment), indent=2) + "\n")
    tmp.replace(file)
    return file
