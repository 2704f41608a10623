"""Benchmark runner: runs the bench/bench_*.py modules, merges their figures into
bench/results.json and prints them as a table.

    python bench/run.py                 # every module
    python bench/run.py --only gas      # one module (repeatable; `bench_gas` works too)
    python bench/run.py --list          # the modules found, without running them

A module `bench/bench_<name>.py` exposes `run() -> dict[str, dict]`: figure key ->
{"value": number, "unit": str, "note": str, "target": optional str such as "<= 8000"}.
See bench/README.md for the contract between the runner and the modules.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

log = logging.getLogger("bench")

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results.json"
MODULE_PREFIX = "bench_"
RESULTS_SCHEMA = 1
KEY_PATTERN = re.compile(r"^[a-z0-9_]+$")
TARGET_PATTERN = re.compile(r"^\s*(<=|>=|<|>|==)\s*(-?[0-9][0-9,_]*(?:\.[0-9]+)?)")
COMPARISONS = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "==": lambda a, b: a == b,
}


class FigureError(ValueError):
    """A module returned something that is not a valid figure set."""


# ---------------------------------------------------------------- modules


def discover(bench_dir: Path = BENCH_DIR) -> dict[str, Path]:
    """Module name (without the `bench_` prefix) -> path, sorted by name."""
    return {
        path.stem.removeprefix(MODULE_PREFIX): path
        for path in sorted(bench_dir.glob(f"{MODULE_PREFIX}*.py"))
    }


def module_name(name: str) -> str:
    """Accepts `gas`, `bench_gas` or `bench_gas.py`."""
    return name.removesuffix(".py").removeprefix(MODULE_PREFIX)


def run_module(name: str) -> dict[str, dict[str, Any]]:
    """Imports bench_<name> (bench/ is on sys.path, the working directory is the repo root)
    and returns its validated figures."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    module = importlib.import_module(MODULE_PREFIX + name)
    runner = getattr(module, "run", None)
    if not callable(runner):
        raise FigureError(f"bench/{MODULE_PREFIX}{name}.py has no run() function")
    return validate(name, runner())


def validate(name: str, figures: object) -> dict[str, dict[str, Any]]:
    """Checks the shape of a module's result and returns a clean copy."""
    if not isinstance(figures, dict) or not figures:
        raise FigureError(f"{name}: run() must return a non-empty dict of figures")
    clean: dict[str, dict[str, Any]] = {}
    for key, figure in figures.items():
        where = f"{name}: figure {key!r}"
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise FigureError(f"{where}: keys are lower_snake_case strings")
        if not isinstance(figure, dict):
            raise FigureError(f"{where}: must be a dict with value, unit, note")
        unknown = set(figure) - {"value", "unit", "target", "note"}
        if unknown:
            raise FigureError(f"{where}: unknown fields {sorted(unknown)}")
        value = figure.get("value")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise FigureError(f"{where}: value must be a finite number, got {value!r}")
        for field in ("unit", "note"):
            if not isinstance(figure.get(field), str):
                raise FigureError(f"{where}: {field} must be a string")
        target = figure.get("target")
        if target is not None and not isinstance(target, str):
            raise FigureError(f"{where}: target must be a string such as '<= 8000'")
        clean[key] = {
            "value": value,
            "unit": figure["unit"],
            "target": target,
            "note": figure["note"],
        }
    return clean


def target_met(value: float, target: str | None) -> bool | None:
    """True/False for a target like "<= 8,000 (why)"; None without a parsable target."""
    if not target:
        return None
    match = TARGET_PATTERN.match(target)
    if not match:
        return None
    limit = float(match.group(2).replace(",", "").replace("_", ""))
    return bool(COMPARISONS[match.group(1)](value, limit))


# ---------------------------------------------------------------- provenance


def git_info(root: Path = ROOT) -> dict[str, Any]:
    """The commit the figures were measured at, and whether the tree had local changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        log.warning("git commit unknown (%s); recording null", exc)
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------- results file


def load_results(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"schema": RESULTS_SCHEMA, "runs": {}, "figures": {}}
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{path} is not valid JSON ({exc}); fix or delete it and run again"
        ) from exc
    if results.get("schema") != RESULTS_SCHEMA:
        raise click.ClickException(
            f"{path} has schema {results.get('schema')!r}, expected {RESULTS_SCHEMA}; "
            "delete it to start afresh"
        )
    return results


def merge(
    results: dict[str, Any], name: str, figures: dict[str, dict[str, Any]], run: dict[str, Any]
) -> None:
    """Replaces module `name`'s figures (dropping its stale keys) and keeps everyone else's."""
    owned = results["figures"]
    for key in figures:
        owner = owned.get(key, {}).get("module", name)
        if owner != name:
            raise FigureError(f"{name}: figure {key!r} already belongs to module {owner!r}")
    merged = {k: v for k, v in owned.items() if v.get("module") != name}
    for key, figure in figures.items():
        merged[key] = {**figure, "module": name}
    # Grouped by module name (a stable sort keeps each module's own order), so re-running one
    # module does not reshuffle the file or the table.
    results["figures"] = dict(sorted(merged.items(), key=lambda item: item[1]["module"]))
    results["runs"] = dict(sorted({**results["runs"], name: run}.items()))


def save_results(results: dict[str, Any], path: Path) -> None:
    results["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------- table


def format_value(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"


@dataclass
class Row:
    key: str
    figure: dict[str, Any]
    fresh: bool


def render(results: dict[str, Any], ran: set[str], console: Console) -> None:
    table = Table(title="ZCX benchmark figures (bench/results.json)", show_lines=False)
    table.add_column("module")
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("unit")
    table.add_column("target")
    table.add_column("status")
    rows = [Row(key, figure, figure["module"] in ran) for key, figure in results["figures"].items()]
    for row in rows:
        met = target_met(row.figure["value"], row.figure.get("target"))
        status = {True: "[green]met[/]", False: "[bold red]MISSED[/]", None: ""}[met]
        module = row.figure["module"]
        if not row.fresh:
            date = results["runs"].get(module, {}).get("date", "?")
            module = f"{module} (from {date[:10]})"
        # Figures are data, not rich markup: "mapping[meterId]" must print as written.
        table.add_row(
            escape(module),
            escape(row.key),
            format_value(row.figure["value"]),
            escape(row.figure["unit"]),
            escape(row.figure.get("target") or ""),
            status,
            style=None if row.fresh else "dim",
        )
    console.print(table)
    console.print("[bold]Notes[/]")
    for row in rows:
        console.print(
            f"  [cyan]{escape(row.key)}[/]: {escape(row.figure['note'])}", highlight=False
        )


# ---------------------------------------------------------------- CLI


@click.command()
@click.option("--only", "only", multiple=True, help="Run only this module (e.g. gas); repeatable.")
@click.option("--list", "list_only", is_flag=True, help="List the modules and exit.")
@click.option(
    "--results",
    "results_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=RESULTS_PATH,
    show_default=True,
    help="Results file to merge into.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when a target is missed.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(
    only: tuple[str, ...], list_only: bool, results_path: Path, strict: bool, verbose: bool
) -> None:
    """Run the benchmarks, merge their figures into bench/results.json and print them."""
    console = Console(width=max(Console().width, 130))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    modules = discover()
    if list_only:
        for name, path in modules.items():
            console.print(f"{name}\t{path.relative_to(ROOT)}")
        return
    selected = [module_name(n) for n in only] or list(modules)
    unknown = [n for n in selected if n not in modules]
    if unknown:
        raise click.BadParameter(
            f"no module bench/{MODULE_PREFIX}{unknown[0]}.py; found: {', '.join(modules)}",
            param_hint="--only",
        )

    os.chdir(ROOT)  # Ape finds the project (and modules their files) from the repo root
    results = load_results(results_path)
    provenance = {**git_info(), "machine": machine_info()}
    ran: set[str] = set()
    failed: list[str] = []
    for name in selected:
        log.info("running bench_%s", name)
        started = time.monotonic()
        try:
            figures = run_module(name)
        except Exception:  # noqa: BLE001 - one broken module must not lose the others' figures
            log.exception("bench_%s failed; its previous figures are kept", name)
            failed.append(name)
            continue
        seconds = round(time.monotonic() - started, 1)
        run = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": seconds}
        try:
            merge(results, name, figures, {**run, **provenance})
        except FigureError:
            log.exception("bench_%s returned clashing figures; not recorded", name)
            failed.append(name)
            continue
        ran.add(name)
        log.info("bench_%s: %d figures in %.1f s", name, len(figures), seconds)
        save_results(results, results_path)  # after each module, so a later crash loses nothing

    render(results, ran, console)
    missed = [
        key
        for key, figure in results["figures"].items()
        if figure["module"] in ran and target_met(figure["value"], figure.get("target")) is False
    ]
    if missed:
        console.print(f"[bold red]Targets missed:[/] {', '.join(missed)}")
    if failed:
        raise click.ClickException(f"module(s) failed: {', '.join(failed)}")
    if strict and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
