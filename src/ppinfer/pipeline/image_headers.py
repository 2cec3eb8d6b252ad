"""Image size from a file's header, without decoding: PNG, JPEG, GIF, BMP, WebP, TIFF.

Used to refuse decompression bombs before any pixel is decoded, and to spot truncated JPEGs.
"""

from __future__ import annotations

import re
import struct


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG, JPEG, GIF, BMP, WebP or TIFF header, without decoding.

    None when the format is not one of these or its header cannot be parsed; OpenCV decides then.
    """
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM":
            return _bmp_size(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _bmp_size(data: bytes) -> tuple[int, int]:
    (dib_size,) = struct.unpack("<I", data[14:18])
    if dib_size == 12:  # BITMAPCOREHEADER: 16-bit unsigned sizes
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # negative height: rows stored top-down


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    endian = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(endian + "I", data[4:8])
    (count,) = struct.unpack(endian + "H", data[offset : offset + 2])
    found: dict[int, int] = {}
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        tag, kind = struct.unpack(endian + "HH", data[entry : entry + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            fmt = "H" if kind == 3 else "I"
            (value,) = struct.unpack_from(endian + fmt, data, entry + 8)
            # A tag given twice: libtiff reads the first, other readers the last. Keep the
            # larger, so the pixel limit holds whichever a decoder believes.
            found[tag] = max(found.get(tag, 0), value)
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# A marker inside entropy-coded data: 0xFF not followed by stuffing (00), RSTn (D0-D7) or fill.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_markers(data: bytes):
    """Yield (marker, offset) through a JPEG, skipping segment bodies and entropy-coded data."""
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:  # stray bytes before a marker: libjpeg skips them too
            i = data.find(b"\xff", i)
            if i < 0:
                return
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers, no length
            i += 2
            continue
        yield marker, i
        if marker == 0xD9 or i + 4 > n:
            return
        i += 2 + ((data[i + 2] << 8) | data[i + 3])
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next marker
            found = _JPEG_MARKER.search(data, i)
            if found is None:
                return
            i = found.start()


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    for marker, i in _jpeg_markers(data):
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return (width, height) if height else None  # height 0: set later by a DNL marker
        if marker == 0xDA:
            return None
    return None


def jpeg_complete(data: bytes) -> bool:
    """True when the JPEG reaches its end-of-image marker (OpenCV 4 decodes truncated files)."""
    return any(marker == 0xD9 for marker, _ in _jpeg_markers(data))
