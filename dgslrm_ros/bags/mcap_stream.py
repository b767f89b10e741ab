"""Forward-only MCAP record scan: the messages of a bag whose index/footer is missing.

rosbags' MCAP reader needs the summary at the end of the file, which a recorder killed mid-write
(or a truncated copy) never wrote. This scan reads records from the start instead and stops at the
first incomplete one, so everything that reached the disk is recovered.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from dgslrm_ros.core.errors import DgslrmError

MAGIC = b"\x89MCAP0\r\n"
_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END, _OP_FOOTER = 0x03, 0x04, 0x05, 0x06, 0x0F, 0x02


class McapTruncatedError(DgslrmError):
    """The scan stopped before the end of the data section."""

    def __init__(self, reason: str, offset: int) -> None:
        self.reason, self.offset = reason, offset
        super().__init__(f"{reason} at byte {offset}")


@dataclass(frozen=True)
class ScannedMessage:
    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes


def _string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    return bytes(buf[pos + 4:pos + 4 + n]).decode(), pos + 4 + n


def _decompress(kind: str, data: bytes, size: int) -> bytes:
    if kind == "":
        return data
    if kind == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        return zstd.decompress(data)
    if kind == "lz4":
        from lz4.frame import decompress  # type: ignore[import-untyped]

        return decompress(data)
    raise McapTruncatedError(f"unknown chunk compression {kind!r}", 0)


def scan_mcap(path: Path) -> Iterator[ScannedMessage]:
    """Yield the messages of an MCAP file in file order; raise McapTruncatedError where it breaks off."""
    blob = memoryview(path.read_bytes())
    if bytes(blob[:8]) != MAGIC:
        raise McapTruncatedError("not an MCAP file (bad magic)", 0)
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, int]] = {}

    def records(buf: memoryview, base: int) -> Iterator[tuple[int, memoryview, int]]:
        pos = 0
        while pos < len(buf):
            if pos + 9 > len(buf):
                raise McapTruncatedError("incomplete record header", base + pos)
            op, length = buf[pos], struct.unpack_from("<Q", buf, pos + 1)[0]
            if pos + 9 + length > len(buf):
                raise McapTruncatedError(f"record 0x{op:02x} of {length} bytes cut off", base + pos)
            yield op, buf[pos + 9:pos + 9 + length], base + pos
            pos += 9 + length

    def handle(op: int, body: memoryview, offset: int) -> Iterator[ScannedMessage]:
        if op == _OP_SCHEMA:
            (sid,) = struct.unpack_from("<H", body, 0)
            schemas[sid] = _string(body, 2)[0]
        elif op == _OP_CHANNEL:
            cid, sid = struct.unpack_from("<HH", body, 0)
            channels[cid] = (_string(body, 4)[0], sid)
        elif op == _OP_MESSAGE:
            cid, _seq, log_time, _pub = struct.unpack_from("<HIQQ", body, 0)
            if cid in channels:
                topic, sid = channels[cid]
                yield ScannedMessage(topic, schemas.get(sid, ""), log_time, bytes(body[22:]))
        elif op == _OP_CHUNK:
            _start, _end, size, _crc = struct.unpack_from("<QQQI", body, 0)
            kind, pos = _string(body, 28)
            (n,) = struct.unpack_from("<Q", body, pos)
            inner = _decompress(kind, bytes(body[pos + 8:pos + 8 + n]), size)
            for sub in records(memoryview(inner), offset):
                yield from handle(*sub)

    for op, body, offset in records(blob[8:], 8):
        if op in (_OP_DATA_END, _OP_FOOTER):
            return
        yield from handle(op, body, offset)
    raise McapTruncatedError("file ends without a DataEnd/Footer record", len(blob))
