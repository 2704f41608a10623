"""Oracle configuration: pydantic-settings with the ZCX_ORACLE_ prefix, overridable by CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from zcx.deployments import DEFAULT_DIR


class OracleSettings(BaseSettings):
    """Every field can be set as ZCX_ORACLE_<FIELD> (e.g. ZCX_ORACLE_RPC_URL)."""

    model_config = SettingsConfigDict(env_prefix="ZCX_ORACLE_", extra="ignore")

    # Chain
    rpc_url: str = "http://127.0.0.1:8545"
    deployments_dir: Path = DEFAULT_DIR
    rpc_timeout_s: float = 10.0

    # Store
    db_path: Path = Path("oracle.db")

    # HTTP
    host: str = "127.0.0.1"
    port: int = 8600
    max_body_bytes: int = 2_000_000
    max_readings_per_request: int = 5_000
    max_future_s: int = 120
    meter_cache_ttl_s: float = 300.0
    # A request never waits on the chain for a cached meter (stale specs are served while a
    # background lookup refreshes them); for a meter never seen it waits at most this long,
    # then answers 503 with Retry-After.
    meter_lookup_wait_s: float = 0.5
    # Strict JSON bodies: nesting deeper than this is refused (400) before parsing.
    max_json_depth: int = 16
    # Slow clients: a request's head must arrive within header_timeout_s of the connection
    # (or of the previous response), its body within body_timeout_s of the head. At most
    # max_connections are open; past it the oldest connection still sending its request is
    # dropped. The cap is also kept below the process's open-files limit.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 900
    keep_alive_s: int = 5
    # Repeated log lines of the HTTP server and event loop (e.g. accept() failing with EMFILE)
    # are written at most once per this interval, with a count of those suppressed.
    log_repeat_interval_s: float = 10.0
    log_file: Path | None = None

    # Backpressure: POST /v1/readings answers 503 + Retry-After, storing nothing, when the
    # unconfirmed backlog would pass max_backlog_readings, or (once it is past
    # backlog_drain_floor) would take longer than max_backlog_drain_s to drain at the drain
    # rate measured over the last backlog_window_s (its best 2-second span).
    max_backlog_readings: int = 100_000
    max_backlog_drain_s: float = 5.0
    backlog_drain_floor: int = 2_000
    backlog_window_s: float = 30.0

    # Keys: exactly one source. The dev key is refused unless the chain id is 31337.
    keystore: Path | None = None
    keystore_password: SecretStr | None = None
    ape_account: str | None = None
    dev_private_key: SecretStr | None = None

    # Batching and submission
    batch_max: int = 1000
    batch_max_age_s: float = 1.0
    # Gas figures that size a batch and set its gas limit (x1.2), measured on the registry: a
    # meter's first-ever run writes fresh slots (~57k); each reading adds hashing + calldata.
    gas_base: int = 150_000
    gas_per_run: int = 70_000
    gas_per_reading: int = 9_000
    block_gas_fraction: float = 0.8
    poll_interval_s: float = 0.05
    backoff_max_s: float = 15.0
    liveness_check_s: float = 5.0
    max_inflight_batches: int = 8
    # A sent transaction without a receipt is looked for in the node's pool (and resent or
    # re-signed if it is gone) only after this long.
    resend_after_s: float = 3.0

    # Quorum: the leader forms batches and asks peers (their base URLs) for attestations.
    leader: bool = True
    peers: list[str] = Field(default_factory=list)
    # The token each peer issued to this oracle (`peers add` on the peer), by peer base URL:
    # ZCX_ORACLE_PEER_TOKENS='{"http://peer-1:8600": "..."}'. Tokens this oracle accepts from
    # its peers are in its store (hashed), managed with `zcx oracle peers ...`.
    peer_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    peer_timeout_s: float = 10.0
    # A leader's batch still below quorum after this long is retired and its readings batched
    # again (minus those recorded on chain meanwhile).
    quorum_timeout_s: float = 60.0
    # A batch this oracle attested that nobody applied within this long expires: its readings
    # go back to the queue (an attestation never blocks a meter).
    attestation_ttl_s: float = 300.0
    # Registry events (what anyone recorded on chain) are read at least this often.
    sync_interval_s: float = 0.5
    sync_lag_blocks: int = 0

    # Test-only fault injection: exit hard at a named point of the submit path.
    crash_point: str | None = None
