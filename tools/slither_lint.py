"""`make lint`'s Slither step: runs Slither through the solc-js bridge and fails on any high or
medium finding that is not triaged here or in the source.

Triage lives in two places, each with its one-line reason:
- EXCLUDED_DETECTORS below, for a detector that does not fit this code base at all;
- `// slither-disable-next-line <detector> -- <reason>` in the contract, for one finding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SOLC_VERSION = "0.8.28"

# detector -> why it is excluded everywhere
EXCLUDED_DETECTORS = {
    "incorrect-equality": "our strict equalities compare stored ids/counters, not balances "
    "an attacker can nudge (the detector's concern is ether/token balances)",
    "uninitialized-local": "Solidity zero-initialises locals; we rely on it for loop "
    "accumulators and 'previous id' cursors that start at 0",
    "timestamp": "readings, rates and expiry are defined in block time by design; miners' "
    "seconds of drift are within the 30-minute slot",
}


def main() -> int:
    bridge = Path(os.environ.get("SOLCX_BINARY_PATH", Path.home() / ".solcx"))
    solc = bridge / f"solc-v{SOLC_VERSION}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "slither.json"
        cmd = [
            str(Path(sys.executable).with_name("slither")),
            "contracts/",
            "--solc-standard-json",
            "--solc",
            str(solc),
            "--solc-remaps",
            "@openzeppelin/contracts=node_modules/@openzeppelin/contracts",
            "--filter-paths",
            "node_modules",
            "--exclude-informational",
            "--exclude-low",
            "--exclude-optimization",
            "--exclude",
            ",".join(EXCLUDED_DETECTORS),
            "--json",
            str(out),
        ]
        subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False)
        if not out.is_file():
            print("slither produced no report; run it by hand: " + " ".join(cmd))
            return 2
        report = json.loads(out.read_text())
    if not report.get("success"):
        print(f"slither failed: {report.get('error')}")
        return 2
    findings = [
        d
        for d in report.get("results", {}).get("detectors", [])
        if d.get("impact") in ("High", "Medium")
    ]
    for finding in findings:
        print(f"[{finding['impact']}] {finding['check']}: {finding['description'].strip()}")
    print(f"slither: {len(findings)} untriaged high/medium finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
