"""CTranslate2's `model.bin`, read without CTranslate2: the variables by name, shape and dtype, and the aliases.

The layout is what CTranslate2's own `ModelSpec._serialize` writes (binary version 6, little-endian):

    u32 binary version · string spec name · u32 spec revision · u32 variable count
    per variable: string name · u8 rank · u32 × rank shape · u8 dtype id · u32 byte count · the bytes
    u32 alias count · per alias: string alias · string variable name

where a string is a u16 length (terminating NUL included), the UTF-8 bytes and a NUL. Arrays are memory-mapped:
reading a 145 MB whisper-base file costs no copy until a variable is used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import StudioError

BINARY_VERSIONS = (6,)  # the version whose layout is described above (CTranslate2 4.x writes 6)
# DataType enum order of CTranslate2's include/ctranslate2/types.h
DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # 5 = bfloat16: numpy has none


@dataclass
class CT2Model:
    """The parsed file: spec name and revision, variables (memory-mapped arrays) and aliases (alias → name)."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(repr=False)
    aliases: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        """A variable by name or alias."""
        name = self.aliases.get(name, name)
        if name not in self.variables:
            raise StudioError(f"the CTranslate2 model has no variable '{name}'; is it a {self.spec} file?")
        return self.variables[name]


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.data = np.memmap(path, dtype=np.uint8, mode="r")
        self.offset = 0

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            raise StudioError(f"{self.path}: the file ends early (truncated at byte {self.offset}); reinstall it")
        value = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += size
        return value[0] if len(value) == 1 else value

    def string(self) -> str:
        length = self.unpack("H")
        raw = bytes(self.data[self.offset : self.offset + length - 1])
        self.offset += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StudioError(
                f"{self.path}: a damaged name at byte {self.offset}; this is no CTranslate2 model"
            ) from None

    def array(self, dtype, shape: tuple[int, ...], nbytes: int) -> np.ndarray:
        if self.offset + nbytes > len(self.data):
            raise StudioError(f"{self.path}: the file ends early (truncated at byte {self.offset}); reinstall it")
        view = self.data[self.offset : self.offset + nbytes].view(dtype).reshape(shape)
        self.offset += nbytes
        return view


def read_ct2_model(path: Path) -> CT2Model:
    """Parse `path` (a CTranslate2 model.bin); raises StudioError naming the damage for a file it cannot read."""
    path = Path(path)
    if not path.is_file():
        raise StudioError(f"{path}: no such CTranslate2 model file")
    reader = _Reader(path)
    version = reader.unpack("I")
    if version not in BINARY_VERSIONS:
        raise StudioError(
            f"{path}: binary version {version}, expected one of {BINARY_VERSIONS}; this is no CTranslate2 model "
            f"file (or one from a CTranslate2 this reader does not know)"
        )
    spec, revision = reader.string(), reader.unpack("I")
    variables = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        rank = reader.unpack("B")
        shape = tuple(reader.unpack("I") for _ in range(rank))
        type_id, nbytes = reader.unpack("B"), reader.unpack("I")
        dtype = DTYPES[type_id] if type_id < len(DTYPES) else None
        if dtype is None:
            raise StudioError(f"{path}: variable {name} has dtype id {type_id}, which this reader cannot load")
        if nbytes != int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize:
            raise StudioError(f"{path}: variable {name} claims {nbytes} bytes for shape {shape}; the file is damaged")
        variables[name] = reader.array(dtype, shape, nbytes)
    aliases = {}
    for _ in range(reader.unpack("I")):
        alias = reader.string()
        aliases[alias] = reader.string()
    if reader.offset != len(reader.data):
        raise StudioError(f"{path}: {len(reader.data) - reader.offset} unexpected bytes after the model; damaged")
    return CT2Model(spec, revision, variables, aliases)
