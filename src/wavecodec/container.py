"""The ``.wvc`` container: magic, version, JSON header, payload sections, CRC32.

Layout (all integers little-endian)::

    8 bytes   magic  b"\\x89WVC\\r\\n\\x1a\\n"  (PNG-style: catches text-mode mangling)
    u16       format version (3; files of versions 1 and 2 are still read)
    u32       header length n
    n bytes   header, UTF-8 JSON object; header["sections"] lists [name, size] pairs
    ...       the sections' bytes, concatenated in that order
    u32       CRC32 of everything before it

:func:`unpack` checks the structure, the lengths and the checksum before it parses or
allocates anything that the file declares, and raises :class:`FormatError` with one
sentence for anything wrong. What the header *means* is checked by the caller
(:mod:`wavecodec.compression`).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from .errors import FormatError

MAGIC = b"\x89WVC\r\n\x1a\n"
VERSION = 5
READABLE = (1, 2, 3, 4, 5)  # versions 2 to 5 each changed what the coder name "ans" means (see wavecodec.coders)
MAX_HEADER_BYTES = 64 * 1024
_PREFIX = struct.Struct("<8sHI")


def pack(header: dict[str, Any], sections: dict[str, bytes]) -> bytes:
    """Assemble a container from a header (without ``sections``) and named byte sections."""
    header = {k: v for k, v in header.items() if k != "format_version"}  # recorded in the prefix, not the JSON
    header["sections"] = [[name, len(data)] for name, data in sections.items()]
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(text) > MAX_HEADER_BYTES:
        raise FormatError("the header is too large")
    body = _PREFIX.pack(MAGIC, VERSION, len(text)) + text + b"".join(sections.values())
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Split and verify a container; returns ``(header, sections)``, the header with its ``format_version`` added."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) == 0:
        raise FormatError("the file is empty")
    if data[: len(MAGIC)] != MAGIC[: len(data)]:
        raise FormatError("not a .wvc file (wrong magic bytes)")
    if len(data) < _PREFIX.size:
        raise FormatError("the file is truncated inside its fixed header")
    magic, version, header_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a .wvc file (wrong magic bytes)")
    if version not in READABLE:
        raise FormatError(f"the file has .wvc format version {version}; this wavecodec reads versions {READABLE[0]} to {READABLE[-1]}")
    if header_len > MAX_HEADER_BYTES:
        raise FormatError(f"the declared header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte limit")
    end_header = _PREFIX.size + header_len
    if len(data) < end_header + 4:
        raise FormatError("the file is truncated inside its header")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(memoryview(data)[:-4]) != crc:  # a view: no copy of the payload
        raise FormatError("the file is corrupted or truncated (CRC32 mismatch)")
    try:
        header = json.loads(data[_PREFIX.size : end_header].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: also integers past Python's digit limit
        raise FormatError("the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise FormatError("the header is not a JSON object")
    header["format_version"] = version  # what the fields mean depends on it
    listing = header.get("sections")
    if not isinstance(listing, list) or not all(
        isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and type(e[1]) is int and e[1] >= 0
        for e in listing
    ):
        raise FormatError("the header's section list is malformed")
    payload_len = len(data) - 4 - end_header
    if sum(size for _, size in listing) != payload_len:
        raise FormatError("the section sizes do not add up to the payload length (truncated or extended file)")
    sections: dict[str, bytes] = {}
    offset = end_header
    for name, size in listing:
        if name in sections:
            raise FormatError(f"the section {name!r} appears twice")
        sections[name] = data[offset : offset + size]
        offset += size
    return header, sections
