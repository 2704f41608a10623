"""What a check reports: named findings, violations or warnings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

VIOLATION = "violation"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem found: `check` names the check, `message` says what is wrong with numbers."""

    check: str
    severity: str
    message: str
    subject: str = ""
    block: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        where = f" [{self.subject}]" if self.subject else ""
        at = f" (block {self.block})" if self.block is not None else ""
        return f"{self.severity.upper()} {self.check}{where}{at}: {self.message}"


def violation(
    check: str, message: str, subject: str = "", block: int | None = None, **details: Any
) -> Finding:
    return Finding(check, VIOLATION, message, subject, block, details)


def warning(
    check: str, message: str, subject: str = "", block: int | None = None, **details: Any
) -> Finding:
    return Finding(check, WARNING, message, subject, block, details)


def findings_frame(findings: list[Finding]) -> pd.DataFrame:
    columns = ["check", "severity", "subject", "block", "message", "details"]
    rows = []
    for f in findings:
        row = asdict(f)
        row["details"] = str(row["details"]) if row["details"] else ""
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
