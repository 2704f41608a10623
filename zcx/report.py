"""One HTML report writer for the demo and the audit: figures (matplotlib), tables (pandas), text.

Usage:
    report = Report("ZCX demo", Path("reports/demo"))
    fig, ax = new_figure()
    ax.plot(...)
    report.add_figure("generation", fig, "Generation against consumption")
    report.add_table("summary", dataframe, "Coins per member kind")
    path = report.write()   # reports/demo/index.html + one PNG per figure + one CSV per table
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are files, there is no screen

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def new_figure(width: float = 10, height: float = 4) -> tuple[Any, Any]:
    """A figure and axes in the report's house style."""
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.grid(True, alpha=0.3)
    return fig, ax


@dataclass
class _Section:
    kind: str
    name: str
    caption: str
    body: str = ""


@dataclass
class Report:
    title: str
    directory: Path
    sections: list[_Section] = field(default_factory=list)

    def add_text(self, text: str, heading: str = "") -> None:
        self.sections.append(_Section("text", heading, heading, text))

    def add_figure(self, name: str, fig: Any, caption: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        self.sections.append(_Section("figure", name, caption))
        return path

    def add_table(self, name: str, frame: pd.DataFrame, caption: str, max_rows: int = 200) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.csv"
        frame.to_csv(path, index=False)
        shown = frame.head(max_rows).to_html(index=False, border=0, classes="table")
        note = (
            f"<p>First {max_rows} of {len(frame)} rows; all in {name}.csv.</p>"
            if len(frame) > max_rows
            else ""
        )
        self.sections.append(_Section("table", name, caption, shown + note))
        return path

    def write(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "img{max-width:100%}table{border-collapse:collapse;font-size:13px}"
            "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}</style>",
            f"</head><body><h1>{html.escape(self.title)}</h1>",
        ]
        for s in self.sections:
            if s.kind == "text":
                if s.caption:
                    parts.append(f"<h2>{html.escape(s.caption)}</h2>")
                parts.append(f"<p>{html.escape(s.body)}</p>")
            elif s.kind == "figure":
                caption = html.escape(s.caption)
                parts.append(f"<h2>{caption}</h2><img src='{s.name}.png' alt='{caption}'>")
            else:
                parts.append(f"<h2>{html.escape(s.caption)}</h2>{s.body}")
        parts.append("</body></html>")
        path = self.directory / "index.html"
        path.write_text("\n".join(parts), encoding="utf-8")
        return path
