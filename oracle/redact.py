"""Keeping secrets out of answers, logs and other users' reach.

Hosted JSON-RPC providers put the API key in the URL's path or query (and some in user info),
so an RPC URL is shown only as scheme://host:port/… and every log line is scrubbed of its
secret parts. Files the oracle creates (store, WAL/SHM, log, keystore) are private (0600)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

PRIVATE_FILE_MODE = 0o600
ELLIPSIS = "…"


def redact_url(url: str) -> str:
    """scheme://host:port, plus "/…" when the URL had anything more (user info, path, query)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or not host:
        return "<unparseable URL>"
    shown = f"[{host}]" if ":" in host else host
    base = f"{parts.scheme}://{shown}" + (f":{port}" if port else "")
    hidden = parts.username or parts.password or parts.path.strip("/") or parts.query
    return base + ("/" + ELLIPSIS if hidden or parts.fragment else "")


def url_secrets(url: str) -> list[str]:
    """The substrings of `url` that may carry a credential, longest first (so that replacing
    them in order never leaves part of a longer one behind)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    path_query = parts.path + ("?" + parts.query if parts.query else "")
    found = {
        url,
        url.split("://", 1)[-1],
        path_query,
        parts.path,
        parts.query,
        parts.fragment,
        parts.netloc.rpartition("@")[0],
        parts.username or "",
        parts.password or "",
    }
    return sorted((s for s in found if len(s.strip("/")) >= 2), key=len, reverse=True)


class Scrubber:
    """Replaces known secret substrings in text with "…"."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        merged = set(self.secrets) | {s for s in secrets if s}
        self.secrets = sorted(merged, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, ELLIPSIS)
        return text


class ScrubFilter(logging.Filter):
    """A handler filter: the record's message and traceback text lose every secret. Installed
    on handlers (not loggers) so that it also covers third-party loggers (web3, urllib3)."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self.scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


class RepeatFilter(logging.Filter):
    """Lets each (logger, message template) through at most once per interval; the next one
    through says how many were suppressed. Keeps a flood (accept() failing with EMFILE under
    a connection flood, a malformed request per connection) from filling the disk."""

    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        skipped = self._suppressed.pop(key, 0)
        if skipped:
            record.msg = f"{record.getMessage()} (and {skipped} like it suppressed)"
            record.args = None
        if len(self._last) > 10_000:  # templates, not values: this only bounds a leak
            self._last.clear()
        return True


def create_private_file(path: Path) -> None:
    """Creates `path` (if missing) readable and writable by its owner only, and tightens the
    mode of an existing file: the umask could only have narrowed it, never widened it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def make_private(path: Path) -> None:
    if path.exists():
        os.chmod(path, PRIVATE_FILE_MODE)
