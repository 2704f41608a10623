"""Command groups of the `zcx` CLI, one module per group, registered lazily in `zcx.cli`."""
