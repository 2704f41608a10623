"""The oracle's shared context: settings, store, chain, signer, metrics, and cached chain facts
(registry config and meter specs) that the API, the CSV import and the submitter all use."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict

from oracle.backlog import Backlog
from oracle.chain import Chain, ChainMismatch, ChainUnavailable, MeterSpec, RegistryConfig
from oracle.metrics import Metrics
from oracle.settings import OracleSettings
from oracle.signer import Signer
from oracle.store import Store
from oracle.validation import Rules
from zcx.ids import meter_id as encode_meter_id

log = logging.getLogger(__name__)


UNKNOWN_METER_TTL_S = 2.0


class NeedChain(Exception):
    """A fact the oracle has never cached is needed and the chain is unreachable: retry later."""


class Oracle:
    def __init__(
        self, settings: OracleSettings, store: Store, chain: Chain, signer: Signer | None
    ) -> None:
        self.settings = settings
        self.store = store
        self.chain = chain
        self.signer = signer
        self.metrics = Metrics(lambda: float(store.queue_depth()))
        self.chain_ok = False
        self.chain_detail = "not connected yet"
        self.fatal: str | None = None
        self.config: RegistryConfig | None = None
        self._refresher = SpecRefresher(self._lookup_specs)
        self.backlog = Backlog(
            store.open_readings,
            max_readings=settings.max_backlog_readings,
            max_drain_s=settings.max_backlog_drain_s,
            drain_floor=settings.backlog_drain_floor,
            window_s=settings.backlog_window_s,
        )
        # Meter specs in memory (warmed from the store's cache, which outlives restarts and
        # chain outages): validation looks up every reading's meter, so no query per reading.
        self._specs: dict[str, tuple[MeterSpec, float]] = store.cached_meters()
        cached = store.get_meta("registry_config")
        if cached:
            cached["signers"] = tuple(cached["signers"])
            self.config = RegistryConfig(**cached)

    def connect(self) -> None:
        """Connects and checks the deployment. ChainMismatch propagates (fatal); an unreachable
        chain is only logged: the API keeps accepting and the submitter retries."""
        try:
            self.chain.connect()
            self.refresh_config()
            self.chain_ok, self.chain_detail = True, "ok"
        except ChainUnavailable as exc:
            self.chain_ok, self.chain_detail = False, str(exc)
            log.warning("chain unreachable at start (%s); accepting readings and retrying", exc)

    def refresh_config(self) -> RegistryConfig:
        config = self.chain.registry_config()
        known = self.store.get_meta("deployment")
        current = {
            "chain_id": self.chain.chain_id,
            "registry": self.chain.registry_address,
        }
        if known and known != current:
            raise ChainMismatch(
                f"this store belongs to registry {known} but the chain now has {current}: "
                "use a fresh store (ZCX_ORACLE_DB_PATH) for a new deployment"
            )
        if not known:
            self.store.set_meta("deployment", current)
        self.store.set_meta("registry_config", asdict(config))
        self.config = config
        return config

    def rules(self) -> Rules:
        if self.config is None:
            raise NeedChain("the registry's rules are not known yet: the chain is unreachable")
        return Rules(
            interval_seconds=self.config.interval_seconds,
            capacity_margin_bps=self.config.capacity_margin_bps,
            now=int(time.time()),
            max_future_s=self.settings.max_future_s,
        )

    # ------------------------------------------------------------------ meter specs

    def prefetch_specs(self, meters: Iterable[str], wait_s: float | None = None) -> None:
        """Makes the meters' specs available to spec_of without ever blocking on the chain for
        a meter already cached: stale specs are served while the background refresher looks
        them up again (one JSON-RPC batch for all pending meters). Meters never seen (or whose
        negative answer expired) are waited for, at most `wait_s` (meter_lookup_wait_s); spec_of
        then raises NeedChain for those still unknown, so the request answers 503 in time
        however long the node hangs. No lock is held across the RPC call."""
        ttl = self.settings.meter_cache_ttl_s
        now = time.time()
        missing: set[str] = set()
        stale: set[str] = set()
        for meter in set(meters):
            cached = self._specs.get(meter)
            if cached is not None and cached[0].known:
                if now - cached[1] >= ttl:
                    stale.add(meter)
                continue
            if self._usable(meter):
                continue  # a recent negative answer
            try:
                encode_meter_id(meter)
            except ValueError:
                continue  # validation reports the bad label
            missing.add(meter)
        if not (missing or stale) or self.chain.members is None:
            return
        self._refresher.request(missing | stale)
        if missing:
            wait = self.settings.meter_lookup_wait_s if wait_s is None else wait_s
            self._refresher.wait_for(lambda: all(self._usable(m) for m in missing), wait)

    def spec_of(self, meter: str) -> MeterSpec | None:
        """The meter's spec from the cache, fresh or stale, never waiting on the chain for
        longer than meter_lookup_wait_s. A negative answer is trusted only for
        UNKNOWN_METER_TTL_S (the meter may be registered soon)."""
        if not self._usable(meter):
            try:
                encode_meter_id(meter)
            except ValueError:
                return None
            if not self._refresher.looking_up(meter):  # else prefetch_specs already waited
                self.prefetch_specs([meter])
            if not self._usable(meter):
                raise NeedChain(f"cannot look up meter {meter!r} now: the chain does not answer")
        return self._specs[meter][0]

    def _usable(self, meter: str) -> bool:
        cached = self._specs.get(meter)
        if cached is None:
            return False
        negative_ttl = min(UNKNOWN_METER_TTL_S, self.settings.meter_cache_ttl_s)
        return cached[0].known or time.time() - cached[1] < negative_ttl

    def _lookup_specs(self, meters: list[str]) -> None:
        """Runs on the refresher thread: one RPC batch, then the caches (no lock is held
        across the call; a dict item assignment is atomic and SQLite has its own lock)."""
        specs = self.chain.meter_specs([encode_meter_id(m) for m in meters])
        now = time.time()
        for meter, spec in zip(meters, specs, strict=True):
            self._specs[meter] = (spec, now)
        fresh = [(m, spec) for m, spec in zip(meters, specs, strict=True) if spec.known]
        if fresh:
            self.store.cache_meters(fresh)

    def close(self) -> None:
        self._refresher.stop()


class SpecRefresher:
    """One background thread that looks meter specs up on the chain. Requests queue meters and
    return at once; a hung node delays only this thread, never an HTTP request."""

    BATCH = 2_000
    RETRY_AFTER_FAILURE_S = 1.0

    def __init__(self, lookup: Callable[[list[str]], None]) -> None:
        self._lookup = lookup
        self._pending: set[str] = set()
        self._in_flight: set[str] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def request(self, meters: Iterable[str]) -> None:
        with self._cond:
            self._pending.update(meters)
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="meter-spec-refresher", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def looking_up(self, meter: str) -> bool:
        with self._cond:
            return meter in self._pending or meter in self._in_flight

    def wait_for(self, done: Callable[[], bool], timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(done, timeout_s)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)  # it may sit in an RPC call; it is a daemon thread

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping, 30.0)
                if self._stopping:
                    return
                if not self._pending:
                    continue
                batch = [self._pending.pop() for _ in range(min(self.BATCH, len(self._pending)))]
                self._in_flight = set(batch)
            try:
                self._lookup(batch)
            except ChainUnavailable as exc:
                log.debug("meter lookup failed (%s); serving the cache", exc)
                with self._cond:
                    self._in_flight = set()
                    self._pending.update(batch)
                    self._cond.notify_all()
                    self._cond.wait(self.RETRY_AFTER_FAILURE_S)
                continue
            except Exception:  # noqa: BLE001 - the thread must survive a bad answer
                log.exception("meter lookup failed")
            with self._cond:
                self._in_flight = set()
                self._cond.notify_all()
