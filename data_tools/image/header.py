"""Image format and size read from the file's header, before any pixel is decoded.

A PNG may claim 60000 x 60000 pixels in 33 bytes; OpenCV would try to allocate it (or stop with
a `cv2.error` traceback). `read_image_header` parses the header of PNG, JPEG, BMP, WebP, TIFF
(and BigTIFF), GIF and PNM (PBM/PGM/PPM/PAM) files with the standard library only, and checks
the cheap signs of a truncated file (PNG without IEND, JPEG without EOI, BMP or WebP shorter than
its header says). Every problem is a ValueError whose message is the cause, without the file name
(the caller adds it).
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

#: Formats whose size this module can read; OpenCV decodes them all.
SUPPORTED_FORMATS = ("PNG", "JPEG", "BMP", "WebP", "TIFF", "GIF", "PNM")

#: File name suffixes of those formats (lower case), for picking images out of a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".webp", ".tif", ".tiff",
                  ".gif", ".pbm", ".pgm", ".ppm", ".pnm", ".pam")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT/JPG/DAC.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}
# Bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, ... IFD8).
_TIFF_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
                    13: 4, 16: 8, 17: 8, 18: 8}


@dataclass(frozen=True)
class ImageHeader:
    """What the header says: the format (one of SUPPORTED_FORMATS) and the size in pixels."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


class ImageTooLarge(ValueError):
    """The header's size is over the caller's pixel limit (raised before any other check)."""


def read_image_header(data: bytes, max_pixels: int | None = None) -> ImageHeader:
    """Format and size of an encoded image; ValueError naming the cause when it cannot be read.

    data: the whole file (truncation is judged against its length). max_pixels: refuse (with
    ImageTooLarge, a ValueError) a width x height above it as soon as the size is read, before
    the truncation checks walk the file. Other causes: empty file, unknown format, a header cut
    short, a file that ends before its image data does, a failed PNG CRC, zero-sized images.
    """
    if not data:
        raise ValueError("empty file (0 bytes)")
    if data.startswith(_PNG_SIGNATURE):
        parse = _png
    elif data.startswith(b"\xff\xd8\xff"):
        parse = _jpeg
    elif data.startswith(b"BM"):
        parse = _bmp
    elif data.startswith(b"RIFF") and (data[8:12] == b"WEBP" or len(data) < 12):
        parse = _webp
    elif data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        parse = _tiff
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        parse = _gif
    elif re.match(rb"P[1-7]\s", data[:3]):
        parse = _pnm
    else:
        raise ValueError(f"unknown image format (file starts with {data[:8].hex(' ')}); "
                         f"supported: {', '.join(SUPPORTED_FORMATS)}")
    return parse(data, max_pixels)


def _sized(kind: str, width: int, height: int, max_pixels: int | None) -> ImageHeader:
    """The header once its size is known: refused here if empty or over the limit."""
    if width <= 0 or height <= 0:
        raise ValueError(f"corrupt {kind} header: {width} x {height} pixels")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(f"{kind} of {width} x {height} = {_megapixels(width * height)} is over "
                            f"the {_megapixels(max_pixels)} decode limit")
    return ImageHeader(kind, width, height)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.4g} MP"


def _need(data: bytes, end: int, what: str) -> None:
    if len(data) < end:
        raise ValueError(f"truncated {what} ({len(data)} bytes, the header alone needs {end})")


def _png(data: bytes, max_pixels: int | None) -> ImageHeader:
    _need(data, 24, "PNG header")
    if data[12:16] != b"IHDR":
        raise ValueError("corrupt PNG: the first chunk is not IHDR")
    header = _sized("PNG", *struct.unpack(">II", data[16:24]), max_pixels)
    position = 8
    while True:  # walk the chunks: each must fit in the file and match its CRC, up to IEND
        if position + 12 > len(data):
            raise ValueError("truncated PNG: the file ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 12 + length
        if end > len(data):
            raise ValueError(f"truncated PNG: chunk {kind.decode('latin-1')} at byte {position} "
                             f"needs {end} bytes, the file has {len(data)}")
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(data[position + 4:end - 4]) != crc:
            raise ValueError(f"corrupt PNG: chunk {kind.decode('latin-1')} at byte {position} "
                             "fails its CRC check")
        if kind == b"IEND":
            return header
        position = end


def _jpeg(data: bytes, max_pixels: int | None) -> ImageHeader:
    position = 2
    while True:
        while position < len(data) and data[position] != 0xFF:  # skip stray bytes between segments
            position += 1
        while position < len(data) and data[position] == 0xFF:  # fill bytes
            position += 1
        if position + 1 > len(data):
            raise ValueError("truncated JPEG: the file ends before the frame header (SOF)")
        marker = data[position]
        position += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):
            raise ValueError("corrupt JPEG: no frame header (SOF) before the image data")
        _need(data, position + 2, "JPEG segment")
        (length,) = struct.unpack(">H", data[position:position + 2])
        if marker in _JPEG_SOF:
            _need(data, position + 7, "JPEG frame header")
            height, width = struct.unpack(">HH", data[position + 3:position + 7])
            if height == 0:
                raise ValueError("unsupported JPEG: height 0 in the frame header (set by a later "
                                 "DNL marker)")
            header = _sized("JPEG", width, height, max_pixels)
            if data.rfind(b"\xff\xd9", position) < 0:
                raise ValueError("truncated JPEG: the file ends before its end-of-image marker")
            return header
        position += length


def _bmp(data: bytes, max_pixels: int | None) -> ImageHeader:
    _need(data, 26, "BMP header")
    (pixel_offset,) = struct.unpack("<I", data[10:14])
    (info_size,) = struct.unpack("<I", data[14:18])
    if info_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _, bits = struct.unpack("<HHHH", data[18:26])
        compression = 0
    else:
        _need(data, 34, "BMP header")
        width, height, _, bits, compression = struct.unpack("<iiHHI", data[18:34])
        height = abs(height)  # negative: rows stored top-down
    header = _sized("BMP", width, height, max_pixels)
    if compression in (0, 3) and bits in (1, 4, 8, 16, 24, 32) and width > 0:  # uncompressed rows
        row_bytes = (width * bits + 31) // 32 * 4
        if len(data) < pixel_offset + row_bytes * height:
            raise ValueError(f"truncated BMP: {len(data)} bytes, its {width} x {height} pixels "
                             f"need {pixel_offset + row_bytes * height}")
    return header


def _webp(data: bytes, max_pixels: int | None) -> ImageHeader:
    _need(data, 30, "WebP header")
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit canvas size minus one
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    elif chunk == b"VP8L":  # lossless: 14-bit sizes minus one after the 0x2f signature
        if data[20] != 0x2F:
            raise ValueError("corrupt WebP: bad VP8L signature")
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 ":  # lossy: key frame start code, then 14-bit sizes
        if data[23:26] != b"\x9d\x01\x2a":
            raise ValueError("corrupt WebP: bad VP8 key-frame start code")
        width, height = (v & 0x3FFF for v in struct.unpack("<HH", data[26:30]))
    else:
        raise ValueError(f"corrupt WebP: unknown first chunk {chunk!r}")
    header = _sized("WebP", width, height, max_pixels)
    (riff_size,) = struct.unpack("<I", data[4:8])
    if len(data) < riff_size + 8:
        raise ValueError(f"truncated WebP: {len(data)} bytes, its header says {riff_size + 8}")
    return header


def _tiff(data: bytes, max_pixels: int | None) -> ImageHeader:
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\0", b"\0+")  # BigTIFF: 8-byte offsets and counts
    _need(data, 16 if big else 8, "TIFF header")
    offset_format = "Q" if big else "I"
    offset = struct.unpack(order + offset_format, data[8:16] if big else data[4:8])[0]
    count_format, entry_size = ("Q", 20) if big else ("H", 12)
    count_size = struct.calcsize(count_format)
    _need(data, offset + count_size, "TIFF directory")
    (count,) = struct.unpack(order + count_format, data[offset:offset + count_size])
    _need(data, offset + count_size + count * entry_size + struct.calcsize(offset_format),
          "TIFF directory")
    formats = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8
    values: dict[int, list[int]] = {}
    for k in range(count):
        start = offset + count_size + k * entry_size
        tag, kind = struct.unpack(order + "HH", data[start:start + 4])
        (number,) = struct.unpack(order + offset_format, data[start + 4:start + (12 if big else 8)])
        item = _TIFF_TYPE_BYTES.get(kind, 1)
        inline = data[start + (12 if big else 8):start + entry_size]
        raw = inline
        if number * item > len(inline):  # the values live elsewhere in the file
            (where,) = struct.unpack(order + offset_format, inline)
            _need(data, where + number * item, f"TIFF tag {tag}")
            raw = data[where:where + number * item]
        # ImageWidth, ImageLength, StripOffsets, StripByteCounts, TileOffsets, TileByteCounts
        if tag in (256, 257, 273, 279, 324, 325):
            if kind not in formats:
                raise ValueError(f"corrupt TIFF: tag {tag} has type {kind}")
            values[tag] = list(struct.unpack(f"{order}{number}{formats[kind]}", raw[:number * item]))
    if 256 not in values or 257 not in values:
        raise ValueError("corrupt TIFF: the first directory has no image width and length")
    header = _sized("TIFF", values[256][0], values[257][0], max_pixels)
    for offsets, counts in ((273, 279), (324, 325)):
        if offsets in values and counts in values:
            end = max((o + c for o, c in zip(values[offsets], values[counts])), default=0)
            if end > len(data):
                raise ValueError(f"truncated TIFF: {len(data)} bytes, its image data ends at {end}")
    return header


def _gif(data: bytes, max_pixels: int | None) -> ImageHeader:
    _need(data, 13, "GIF header")
    width, height, flags = struct.unpack("<HHB", data[6:11])
    header = _sized("GIF", width, height, max_pixels)
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # global colour table
    while True:  # walk the blocks up to the trailer, so a cut file is caught before decoding
        if position >= len(data):
            raise ValueError("truncated GIF: the file ends before its trailer")
        block = data[position]
        if block == 0x3B:
            return header
        if block == 0x21:  # extension: label, then data sub-blocks
            position += 2
        elif block == 0x2C:  # image: descriptor, local colour table, LZW code size, sub-blocks
            _need(data, position + 10, "GIF image descriptor")
            local = data[position + 9]
            position += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
        else:
            raise ValueError(f"corrupt GIF: unknown block 0x{block:02x} at byte {position}")
        while position < len(data) and data[position]:  # sub-blocks end with a zero size
            position += data[position] + 1
        position += 1


def _pnm(data: bytes, max_pixels: int | None) -> ImageHeader:
    head = data[:4096]
    if head[1:2] == b"7":  # PAM: WIDTH / HEIGHT lines before ENDHDR
        width = re.search(rb"^WIDTH\s+(\d+)", head, re.M)
        height = re.search(rb"^HEIGHT\s+(\d+)", head, re.M)
        if not (width and height):
            raise ValueError("corrupt PAM header: no WIDTH and HEIGHT lines")
        return _sized("PNM", int(width.group(1)), int(height.group(1)), max_pixels)
    kind = head[1:2]
    # Numbers separated by whitespace, comments (# to end of line) anywhere between them.
    fields = list(re.finditer(rb"(?:\s|#[^\n]*\n)+(\d+)", head[2:]))
    wanted = 2 if kind in (b"1", b"4") else 3  # width, height (, maxval)
    if len(fields) < wanted:
        raise ValueError("truncated or corrupt PNM header: no width and height")
    width, height = (int(f.group(1)) for f in fields[:2])
    header = _sized("PNM", width, height, max_pixels)
    if kind in (b"4", b"5", b"6"):  # binary: the pixels follow one whitespace byte
        start = 2 + fields[wanted - 1].end() + 1
        if kind == b"4":
            needed = (width + 7) // 8 * height
        else:
            sample = 1 if int(fields[2].group(1)) < 256 else 2
            needed = width * height * sample * (3 if kind == b"6" else 1)
        if len(data) < start + needed:
            raise ValueError(f"truncated PNM: {len(data)} bytes, its {width} x {height} pixels "
                             f"need {start + needed}")
    return header


__all__ = ["IMAGE_SUFFIXES", "SUPPORTED_FORMATS", "ImageHeader", "ImageTooLarge", "read_image_header"]
