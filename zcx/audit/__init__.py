"""Auditor toolkit: rebuild the ledger from the chain with pandas, check every invariant, find
tampering. Entry points: `zcx audit` (zcx.audit.cli:cli) and `ape run audit`. See docs/audit.md."""

from zcx.audit.checks import AuditConfig
from zcx.audit.findings import Finding
from zcx.audit.run import AuditResult, audit, write_outputs

__all__ = ["AuditConfig", "AuditResult", "Finding", "audit", "write_outputs"]
