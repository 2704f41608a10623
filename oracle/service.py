"""The oracle's shared context: settings, store, chain, signer, metrics, and cached chain facts
(registry config and meter specs) that the API, the CSV import and the submitter all use."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict

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
        self._meter_lock = threading.Lock()
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

    def prefetch_specs(self, meters: Iterable[str]) -> None:
        """Looks up, in one JSON-RPC batch, the specs of the meters that are not cached or whose
        cache is older than the TTL, and caches the registered ones (one store transaction).
        When the chain is unreachable the stale cache stays in use; spec_of then raises
        NeedChain only for meters never seen."""
        ttl = self.settings.meter_cache_ttl_s
        now = time.time()
        stale: dict[str, bytes] = {}
        for meter in set(meters):
            cached = self._specs.get(meter)
            if cached is None or now - cached[1] >= ttl:
                try:
                    stale[meter] = encode_meter_id(meter)
                except ValueError:
                    continue  # validation reports the bad label
        if not stale or self.chain.members is None:
            return
        with self._meter_lock:
            try:
                specs = self.chain.meter_specs(list(stale.values()))
            except ChainUnavailable as exc:
                log.debug("meter lookup failed (%s); using the cache", exc)
                return
            fresh = [(m, spec) for m, spec in zip(stale, specs, strict=True) if spec.known]
            if fresh:
                self.store.cache_meters(fresh)
            for meter, spec in zip(stale, specs, strict=True):
                # A negative answer is kept only briefly: the meter may be registered soon.
                fetched = now if spec.known else now - ttl + UNKNOWN_METER_TTL_S
                self._specs[meter] = (spec, fetched)

    def spec_of(self, meter: str) -> MeterSpec | None:
        """The meter's spec: cached within its TTL, else from the chain, else the stale cache."""
        cached = self._specs.get(meter)
        if cached and time.time() - cached[1] < self.settings.meter_cache_ttl_s:
            return cached[0]
        self.prefetch_specs([meter])
        cached = self._specs.get(meter)
        if cached is None:
            try:
                encode_meter_id(meter)
            except ValueError:
                return None
            raise NeedChain(f"cannot look up meter {meter!r}: the chain is unreachable")
        return cached[0]
