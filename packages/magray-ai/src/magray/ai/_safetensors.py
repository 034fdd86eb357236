"""Reading ``.safetensors`` files with numpy (no PyTorch, no ``safetensors`` package).

The format is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, and the raw little-endian tensor bytes.
bf16 and f16 tensors are widened to float32.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from magray.ai.errors import ConversionError

__all__ = ["read_safetensors"]

_DTYPES = {
    "F32": np.float32,
    "F64": np.float64,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I8": np.int8,
    "U8": np.uint8,
}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a ``.safetensors`` file (bf16/f16 widened to float32)."""
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise ConversionError(f"{path} is not a safetensors file (too short)")
    (header_len,) = struct.unpack("<Q", raw[:8])
    try:
        header = json.loads(raw[8 : 8 + header_len])
    except ValueError as exc:
        raise ConversionError(f"{path} has an unreadable safetensors header: {exc}") from exc
    base = 8 + header_len
    tensors: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        buffer = raw[base + start : base + end]
        dtype = meta["dtype"]
        if dtype == "BF16":
            bits = np.frombuffer(buffer, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif dtype in _DTYPES:
            array = np.frombuffer(buffer, dtype=np.dtype(_DTYPES[dtype]).newbyteorder("<"))
        else:
            raise ConversionError(f"tensor {name} has unsupported dtype {dtype}")
        array = array.reshape(meta["shape"])
        if array.dtype in (np.float16, np.float64):
            array = array.astype(np.float32)
        tensors[name] = array
    return tensors
