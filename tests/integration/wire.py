"""The migration stream's framing, for the test peers and the fuzz corpus scripts (see
include/dmalog/mstream.h): CRC-32C and the frame headers of stream
version 7."""
import struct

MAGIC, VERSION, HDR = 0x474C4D44, 7, 24  # HDR: magic, type, flags, seq, length, 2 CRCs


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def frame(ftype, seq, payload=b""):
    """A whole frame: header (with its number and both checksums), then the payload."""
    head = struct.pack("<IHHIII", MAGIC, ftype, 0, seq, len(payload),
                       crc32c(payload) if payload else 0)
    return head + struct.pack("<I", crc32c(head)) + payload


def parse_header(hdr):
    """(type, seq, length) of a 24-byte header."""
    ftype, _flags, seq, length = struct.unpack_from("<HHII", hdr, 4)
    return ftype, seq, length
