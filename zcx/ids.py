"""Meter ids: human-readable strings on the wire, bytes32 on chain."""

METER_ID_MAX_BYTES = 32


def meter_id(label: str) -> bytes:
    """Encodes a meter label (UTF-8, at most 32 bytes) as a right-zero-padded bytes32."""
    raw = label.encode("utf-8")
    if not raw:
        raise ValueError("meter id: must not be empty")
    if len(raw) > METER_ID_MAX_BYTES:
        raise ValueError(f"meter id: {label!r} is {len(raw)} bytes; at most 32 allowed")
    if b"\x00" in raw:
        raise ValueError("meter id: must not contain NUL characters")
    return raw.ljust(METER_ID_MAX_BYTES, b"\x00")


def meter_label(meter_id_bytes: bytes) -> str:
    """Decodes a bytes32 meter id back to its label."""
    return bytes(meter_id_bytes).rstrip(b"\x00").decode("utf-8")
