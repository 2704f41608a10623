"""ZCX: zero-carbon value platform. Shared Python code for scripts, oracle, tests and auditors."""
