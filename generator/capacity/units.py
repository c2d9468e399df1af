"""What the capacity model counts in: bytes, element sizes of dtypes, and how amounts print."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

GIB: Final = 1024**3
MIB: Final = 1024**2

DTYPE_BYTES: Final[Mapping[str, int]] = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
    "fp8": 1, "float8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "float8_e4m3fn": 1, "float8_e5m2": 1,
}


def dtype_bytes(name: str) -> int:
    """Bytes per element of a dtype name ("bfloat16" -> 2); ValueError for names not in `DTYPE_BYTES`."""
    try:
        return DTYPE_BYTES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(DTYPE_BYTES)}") from None


def human_bytes(amount: float) -> str:
    """`85899345920` -> `"80.0 GiB"`."""
    return f"{amount / GIB:.1f} GiB"
