"""Wire formats of the HTTP API (pydantic). Published in /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from zcx.eip712 import UINT64_MAX


def _iso_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(
            "must be an ISO-8601 string with a UTC offset, e.g. 2026-04-01T09:00:00+09:00"
        )
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_string)]
Wh = Annotated[int, Field(strict=True, ge=0, le=UINT64_MAX)]


class ReadingIn(BaseModel):
    """One meter's PQ1..PQ4 over [interval_start, interval_end), whole Wh."""

    model_config = ConfigDict(extra="forbid")

    meter_id: str = Field(
        min_length=1, max_length=32, description="meter label (UTF-8, <= 32 bytes)"
    )
    interval_start: IsoTime
    interval_end: IsoTime
    generated_wh: Wh = Field(description="PQ1 generated")
    consumed_wh: Wh = Field(description="PQ2 consumed")
    sold_wh: Wh = Field(description="PQ3 sold to the grid")
    purchased_wh: Wh = Field(description="PQ4 purchased from the grid")


class ReadingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    readings: list[ReadingIn] = Field(min_length=1)


class ReadingResult(BaseModel):
    index: int
    meter_id: str
    interval_start: int
    status: Literal["accepted", "duplicate"]


class ReadingsAccepted(BaseModel):
    accepted: int
    duplicates: int
    results: list[ReadingResult]


class ProblemItem(BaseModel):
    index: int | None = None
    field: str | None = None
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details (application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[ProblemItem] = Field(default_factory=list)


class ReadingStatus(BaseModel):
    meter_id: str
    interval_start: int
    interval_end: int
    generated_wh: int
    consumed_wh: int
    sold_wh: int
    purchased_wh: int
    status: Literal["accepted", "batched", "submitted", "confirmed", "rejected"]
    tx_hash: str | None = None
    block_number: int | None = None
    reason: str | None = None


class MeterReadings(BaseModel):
    meter_id: str
    readings: list[ReadingStatus]


class Health(BaseModel):
    store: bool
    chain: bool
    chain_detail: str = ""
    signer: str | None = None
    leader: bool = True
    queue_depth: int = 0
    fatal: str | None = None


class AttestationReading(BaseModel):
    model_config = ConfigDict(extra="forbid")

    meter_id: str = Field(min_length=1, max_length=32)
    start: Annotated[int, Field(strict=True, ge=0, le=UINT64_MAX)]
    end: Annotated[int, Field(strict=True, ge=0, le=UINT64_MAX)]
    generated_wh: Wh
    consumed_wh: Wh
    sold_wh: Wh
    purchased_wh: Wh


class AttestationRequest(BaseModel):
    """A leader asks a peer oracle to sign a batch it proposes."""

    model_config = ConfigDict(extra="forbid")

    chain_id: int
    registry: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    digest: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    readings: list[AttestationReading] = Field(min_length=1, max_length=1000)


class Attestation(BaseModel):
    signer: str
    signature: str
    digest: str
