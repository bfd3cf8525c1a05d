"""Decompression with a ceiling: nothing inflates past its limit, whatever it claims.

A few kB of gzip can inflate to gigabytes (a "bomb"), so every decompressor here stops
one byte past the limit instead of trusting the stream: deflate and gzip through an
ISA-L ``decompressobj`` with ``max_length``, snappy after reading the uncompressed length
its raw format declares up front. Callers map the outcomes to their own reason codes.
"""

from __future__ import annotations

import struct
import zlib
from typing import cast

import cramjam
from isal import isal_zlib

GZIP = 16 + zlib.MAX_WBITS  # a gzip member (the cutout stamps)
RAW_DEFLATE = -zlib.MAX_WBITS  # Avro's "deflate" codec: RFC 1951 without a header
INFLATE_ERRORS: tuple[type[Exception], ...] = (
    cast("type[Exception]", isal_zlib.error),  # its stubs call it an instance
    zlib.error,
)


class Damaged(ValueError):
    """The compressed data is damaged or ends early."""


def inflate(data: bytes, wbits: int, limit: int) -> bytes | None:
    """``data`` inflated, or None when it holds more than ``limit`` bytes.

    Trailing bytes after the end of the stream are ignored, as ``zlib.decompress`` does.
    Raises :class:`Damaged` for a damaged stream or one that ends early.
    """
    inflater = isal_zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except INFLATE_ERRORS as exc:
        raise Damaged(str(exc)) from exc
    if len(out) > limit:
        return None
    if not inflater.eof:
        raise Damaged("the compressed stream ends early (truncated)")
    return out


def _snappy_length(data: bytes) -> int:
    """The uncompressed length a raw snappy block declares (a little-endian varint)."""
    length = shift = 0
    for byte in data[:5]:
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length
        shift += 7
    raise Damaged("snappy block has no valid length header")


def unsnappy_avro(block: bytes, limit: int) -> bytes | None:
    """An Avro snappy block (raw snappy + big-endian CRC32 of the output), or None when
    it declares more than ``limit`` bytes. Raises :class:`Damaged`."""
    if len(block) < 5:
        raise Damaged(f"snappy block of {len(block)} bytes is too short")
    body, crc = block[:-4], block[-4:]
    if _snappy_length(body) > limit:
        return None
    try:
        out = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise Damaged(f"snappy: {exc}") from exc
    if zlib.crc32(out) != struct.unpack(">I", crc)[0]:
        raise Damaged("snappy block CRC mismatch")
    return out
