"""Reader for CTranslate2's ``model.bin``.

The layout, as the ``ctranslate2`` package's ``specs/model_spec.py`` writes it (all integers
little-endian; a *string* is a uint16 length counting a trailing NUL, then the bytes and the NUL):

    uint32 binary_version          (6 for every converter since CTranslate2 3.x)
    string spec_name               e.g. "WhisperSpec"
    uint32 spec_revision
    uint32 n_variables
    n_variables x { string name, uint8 rank, uint32 dims[rank], uint8 dtype_id,
                    uint32 n_bytes, bytes data }
    uint32 n_aliases
    n_aliases x { string alias, string target }

Quantised weights sit beside a ``<name>_scale`` variable; the float value is ``int / scale``, with
one scale per output row (int8) or one for the whole matrix (int16).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from voxdistill.errors import ConversionError

SUPPORTED_BINARY_VERSION = 6
# The order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_DTYPES = (torch.float32, torch.int8, torch.int16, torch.int32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class CT2Model:
    """The variables of a ``model.bin``, aliases resolved, quantised weights as stored."""

    spec_name: str
    spec_revision: int
    variables: dict[str, torch.Tensor]

    def float_weight(self, name: str) -> torch.Tensor:
        """The variable ``name`` as float32, de-quantised when it has a ``_scale`` companion."""
        value = self.variables[name]
        scale = self.variables.get(f"{name}_scale")
        if scale is None:
            return value.to(torch.float32)
        scale = scale.to(torch.float32)
        if scale.ndim == 1:  # one scale per output row; conv weights are (out, in, k)
            scale = scale.reshape(-1, *([1] * (value.ndim - 1)))
        return value.to(torch.float32) / scale

    def scalar(self, name: str) -> int | float | None:
        value = self.variables.get(name)
        return None if value is None else value.item()


class _Cursor:
    def __init__(self, data: memoryview, origin: str):
        self.data = data
        self.pos = 0
        self.origin = origin

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ConversionError(
                f"{self.origin}: truncated CTranslate2 model (wanted {n} bytes at offset {self.pos}, "
                f"file has {len(self.data)}); re-install or re-join the model file"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.unpack("H")))
        return raw[:-1].decode("utf-8")


def read_ct2_model(path: str | Path) -> CT2Model:
    """Parse a CTranslate2 ``model.bin`` file."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no CTranslate2 model file here")
    return read_ct2_bytes(path.read_bytes(), str(path))


def check_ct2_file(path: str | Path) -> None:
    """A ConversionError naming ``path`` when its layout is not whole (cut off, trailing bytes,
    another binary version), found by walking the headers of a memory map: no payload is read, so
    checking a large model before a runtime loads it costs little."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no CTranslate2 model file here")
    if path.stat().st_size == 0:
        raise ConversionError(f"{path}: empty (0 bytes); re-install, re-join or convert the model again")
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        with memoryview(data) as view:
            _walk(_Cursor(view, str(path)), keep=False)


def read_ct2_bytes(data: bytes, origin: str) -> CT2Model:
    """Parse the bytes of a ``model.bin`` into named tensors (aliases become shared tensors).
    ``origin`` names the source in error messages."""
    return _walk(_Cursor(memoryview(data), origin), keep=True)


def _walk(cursor: _Cursor, keep: bool) -> CT2Model:
    """Parse the layout under ``cursor``; with ``keep`` False, skip over the payloads (the returned
    model then holds no variables)."""
    origin = cursor.origin
    version = cursor.unpack("I")
    if version != SUPPORTED_BINARY_VERSION:
        raise ConversionError(
            f"{origin}: CTranslate2 binary version {version}; only version "
            f"{SUPPORTED_BINARY_VERSION} is supported (re-convert it with a current ctranslate2)"
        )
    spec_name = cursor.string()
    spec_revision = cursor.unpack("I")

    variables: dict[str, torch.Tensor] = {}
    names: set[str] = set()
    for _ in range(cursor.unpack("I")):
        name = cursor.string()
        shape = [cursor.unpack("I") for _ in range(cursor.unpack("B"))]
        dtype_id = cursor.unpack("B")
        if dtype_id >= len(_DTYPES):
            raise ConversionError(f"{origin}: variable {name} has unknown dtype id {dtype_id}")
        raw = cursor.take(cursor.unpack("I"))
        names.add(name)
        if keep:
            dtype = _DTYPES[dtype_id]
            # bytearray: torch.frombuffer wants a writable buffer, and it rejects an empty one.
            flat = torch.frombuffer(bytearray(raw), dtype=dtype) if len(raw) else torch.empty(0, dtype=dtype)
            variables[name] = flat.reshape(shape)
        raw.release()

    for _ in range(cursor.unpack("I")):
        alias, target = cursor.string(), cursor.string()
        if target not in names:
            raise ConversionError(f"{origin}: alias {alias} points at missing variable {target}")
        if keep:
            variables[alias] = variables[target]

    if cursor.pos != len(cursor.data):
        raise ConversionError(f"{origin}: {len(cursor.data) - cursor.pos} unexpected trailing bytes")
    return CT2Model(spec_name=spec_name, spec_revision=spec_revision, variables=variables)
