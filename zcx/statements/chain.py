"""Statement facts read from any JSON-RPC node: ZCV's retirement and certificate records (view
calls), and each retirement's `Retired` log for its transaction, block and block time.

Reads go through web3 with the compiled ZeroCarbonValue ABI (the same manifest the audit uses),
so the statements module, the portal and `zcx verify statement` need no Ape connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

from zcx.certificates import Web3MemberDirectory, static_attributes
from zcx.statements.model import (
    DEFAULT_TZ,
    MONTH_KIND,
    RETIREMENT_KIND,
    CertificateUse,
    CfeScore,
    RetirementEntry,
    Statement,
    StatementError,
)

# Solidity enum order (contracts/interfaces/IMemberRegistry.sol GenerationMethod).
GENERATION_METHODS = ("Solar", "Wind", "Geothermal", "Biomass", "Hydro")
DEFAULT_PAGE_BLOCKS = 50_000

# Matched retirements (issue 12) give a CFE score; until the chain records them, none is shown.
CfeSource = Callable[["ChainReader", Mapping[str, Any]], CfeScore | None]


def no_cfe(reader: ChainReader, record: Mapping[str, Any]) -> CfeScore | None:
    """The default CFE source: plain retirements carry no hourly score."""
    return None


class ChainReader:
    """Reads one ZCV deployment: `w3` a connected Web3, `zcv` its address, `abi` its ABI."""

    def __init__(
        self,
        w3: Any,
        zcv: str,
        abi: Sequence[Mapping[str, Any]],
        from_block: int = 0,
        page_blocks: int = DEFAULT_PAGE_BLOCKS,
        cfe_source: CfeSource = no_cfe,
    ) -> None:
        self.w3 = w3
        self.zcv = to_checksum_address(zcv)
        self.abi = list(abi)
        self.contract = w3.eth.contract(address=self.zcv, abi=self.abi)
        self.from_block = from_block
        self.page_blocks = page_blocks
        self.cfe_source = cfe_source
        self.directory = Web3MemberDirectory(w3)
        retired = next(e for e in self.abi if e.get("type") == "event" and e["name"] == "Retired")
        self.retired_topic = "0x" + event_abi_to_log_topic(dict(retired)).hex()  # type: ignore[arg-type]
        self.retired_data_types = [i["type"] for i in retired["inputs"] if not i["indexed"]]
        self.retired_data_names = [i["name"] for i in retired["inputs"] if not i["indexed"]]
        self._certificates: dict[int, dict[str, Any]] = {}

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def check_contract(self) -> None:
        if not self.w3.eth.get_code(self.zcv):
            raise StatementError(f"zcv: no contract at {self.zcv} on chain {self.chain_id}")

    # -- records

    def _call(self, name: str, *args: Any) -> dict[str, Any]:
        function = getattr(self.contract.functions, name)
        value = function(*args).call()
        outputs = next(e for e in self.abi if e.get("name") == name)["outputs"][0]["components"]
        return {c["name"]: v for c, v in zip(outputs, value, strict=True)}

    def retirement_count(self) -> int:
        return int(self.contract.functions.retirementCount().call())

    def retirement_record(self, retirement_id: int) -> dict[str, Any]:
        count = self.retirement_count()
        if not 1 <= retirement_id <= count:
            raise StatementError(f"retirement: no retirement {retirement_id} (ids 1..{count})")
        return self._call("retirement", retirement_id)

    def certificate_record(self, certificate_id: int) -> dict[str, Any]:
        if certificate_id not in self._certificates:
            self._certificates[certificate_id] = self._call("certificate", certificate_id)
        return self._certificates[certificate_id]

    # -- logs

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def _logs(self, topics: list[Any], to_block: int | None = None) -> list[dict[str, Any]]:
        """Logs of ZCV with `topics`, from `from_block` to `to_block` (the head), in pages."""
        head = self.head() if to_block is None else to_block
        found: list[dict[str, Any]] = []
        first = self.from_block
        while first <= head:
            last = min(first + self.page_blocks - 1, head)
            found += self.w3.eth.get_logs(
                {"address": self.zcv, "topics": topics, "fromBlock": first, "toBlock": last}
            )
            first = last + 1
        return found

    def retired_log(self, retirement_id: int) -> dict[str, Any]:
        topic = "0x" + retirement_id.to_bytes(32, "big").hex()
        logs = [log for log in self._logs([self.retired_topic, topic]) if not log.get("removed")]
        if len(logs) != 1:
            raise StatementError(
                f"retirement {retirement_id}: expected one Retired log from block "
                f"{self.from_block}, found {len(logs)}"
            )
        return dict(logs[0])

    def retired_ids(self, beneficiary: str, to_block: int | None = None) -> list[int]:
        """Ids of every retirement naming `beneficiary` (exact text) recorded up to `to_block`,
        oldest first."""
        ids = []
        for log in self._logs([self.retired_topic], to_block):
            if log.get("removed"):
                continue
            values = abi_decode(self.retired_data_types, bytes(log["data"]))
            data = dict(zip(self.retired_data_names, values, strict=True))
            if data["beneficiary"] == beneficiary:
                ids.append(int.from_bytes(bytes(log["topics"][1]), "big"))
        return sorted(ids)

    # -- statement parts

    def entry(self, retirement_id: int) -> RetirementEntry:
        record = self.retirement_record(retirement_id)
        log = self.retired_log(retirement_id)
        block = self.w3.eth.get_block(log["blockNumber"])
        if int(block["timestamp"]) != int(record["retiredAt"]):
            raise StatementError(
                f"retirement {retirement_id}: record says retired at {record['retiredAt']}, its "
                f"block {block['number']} has time {block['timestamp']}"
            )
        uses = tuple(
            self._use(int(c), int(u))
            for c, u in zip(record["certificateIds"], record["certificateUnits"], strict=True)
        )
        return RetirementEntry(
            id=int(record["id"]),
            holder=to_checksum_address(record["holder"]),
            beneficiary=str(record["beneficiary"]),
            reason=str(record["reason"]),
            consumption_start=int(record["consumptionStart"]),
            consumption_end=int(record["consumptionEnd"]),
            units=int(record["units"]),
            certificates=uses,
            txn_hash=_hex(log["transactionHash"]),
            block_number=int(log["blockNumber"]),
            block_hash=_hex(log["blockHash"]),
            block_time=int(block["timestamp"]),
            cfe=self.cfe_source(self, record),
        )

    def _use(self, certificate_id: int, units_used: int) -> CertificateUse:
        c = self.certificate_record(certificate_id)
        attrs = static_attributes(c, self.directory)
        return CertificateUse(
            id=certificate_id,
            meter=_meter_label(bytes(c["meterId"])),
            owner_name=attrs.owner_name,
            method=GENERATION_METHODS[attrs.method],
            zone=attrs.zone,
            capacity_w=attrs.capacity_w,
            period_start=int(c["periodStart"]),
            period_end=int(c["periodEnd"]),
            issued_at=int(c["issuedAt"]),
            wh=int(c["wh"]),
            units=int(c["units"]),
            units_used=units_used,
            revoked=bool(c["revoked"]),
        )


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def _meter_label(raw: bytes) -> str:
    """The text label of a bytes32 meter id, or its 0x-hex when it is not printable text."""
    stripped = raw.rstrip(b"\x00")
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and text.isprintable() and "\x00" not in text:
        return text
    return "0x" + raw.hex()


# ---------------------------------------------------------------------------- statements


def month_bounds(month: str, tz: str = DEFAULT_TZ) -> tuple[int, int]:
    """[first instant, first instant of the next month) of YYYY-MM in `tz`, as unix seconds."""
    try:
        year, number = (int(part) for part in month.split("-"))
        if len(month) != 7 or not 1 <= number <= 12:
            raise ValueError
    except ValueError:
        raise StatementError(f"month: {month!r} is not YYYY-MM (e.g. 2026-11)") from None
    zone = ZoneInfo(tz)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


def retirement_statement(
    reader: ChainReader,
    retirement_id: int,
    *,
    tz: str = DEFAULT_TZ,
    verify_base: str = "",
    issued_at: int = 0,
) -> Statement:
    entry = reader.entry(retirement_id)
    return Statement(
        kind=RETIREMENT_KIND,
        chain_id=reader.chain_id,
        zcv=reader.zcv,
        beneficiary=entry.beneficiary,
        retirements=(entry,),
        tz=tz,
        issued_at=issued_at,
        verify_url=retirement_verify_url(verify_base, reader.chain_id, reader.zcv, retirement_id),
    )


def beneficiary_statement(
    reader: ChainReader,
    beneficiary: str,
    month: str,
    *,
    tz: str = DEFAULT_TZ,
    verify_base: str = "",
    issued_at: int = 0,
    as_of_block: int | None = None,
) -> Statement:
    """Every retirement naming `beneficiary` whose consumption period lies within `month`
    (local to `tz`; a period's end is exclusive, so a period ending at the next month's first
    instant is in the month), recorded up to `as_of_block` (default: the head)."""
    if not beneficiary.strip():
        raise StatementError("beneficiary: must not be empty")
    start, end = month_bounds(month, tz)
    head = reader.head()
    as_of = head if as_of_block is None else as_of_block
    if as_of > head:
        raise StatementError(f"as_of_block: block {as_of} is past the node's head {head}")
    entries = []
    for retirement_id in reader.retired_ids(beneficiary, as_of):
        record = reader.retirement_record(retirement_id)
        if start <= int(record["consumptionStart"]) and int(record["consumptionEnd"]) <= end:
            entries.append(reader.entry(retirement_id))
    if not entries:
        raise StatementError(
            f"beneficiary: no retirement names {beneficiary!r} with a consumption period in "
            f"{month} up to block {as_of}"
        )
    return Statement(
        kind=MONTH_KIND,
        chain_id=reader.chain_id,
        zcv=reader.zcv,
        beneficiary=beneficiary,
        retirements=tuple(entries),
        month=month,
        as_of_block=as_of,
        tz=tz,
        issued_at=issued_at,
        verify_url=beneficiary_verify_url(
            verify_base, reader.chain_id, reader.zcv, beneficiary, month
        ),
    )


def retirement_verify_url(base: str, chain_id: int, zcv: str, retirement_id: int) -> str:
    """The portal serves this page: /verify/retirement/<chain_id>/<zcv address>/<id>."""
    address = to_checksum_address(zcv)
    return f"{base.rstrip('/')}/verify/retirement/{chain_id}/{address}/{retirement_id}"


def beneficiary_verify_url(base: str, chain_id: int, zcv: str, beneficiary: str, month: str) -> str:
    from urllib.parse import quote

    return (
        f"{base.rstrip('/')}/verify/beneficiary/{chain_id}/{to_checksum_address(zcv)}/"
        f"{month}?name={quote(beneficiary, safe='')}"
    )
