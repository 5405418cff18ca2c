#!/usr/bin/env python3
"""Write the seed corpus for fuzz_devstate: whole and cut device streams it can mutate."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))  # wire.py
from wire import crc32c  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "corpus", "devstate")
MAGIC, VERSION, NREGS, CHUNK, MEM = 0x5644474F4C414D44, 1, 16, 4096, 4 * 4096
HEADER, CHUNK_REC, REGS, END = 1, 2, 3, 4


def record(rtype, payload):
    head = struct.pack("<II", rtype, len(payload)) + payload
    return head + struct.pack("<I", crc32c(head))


def stream(chunks):
    recs = [record(HEADER, struct.pack("<QIIQ", MAGIC, VERSION, NREGS, MEM))]
    for off in chunks:
        recs.append(record(CHUNK_REC, struct.pack("<Q", off) + bytes([off // CHUNK + 1]) * CHUNK))
    recs.append(record(REGS, struct.pack("<%dQ" % (NREGS + 2), *range(NREGS + 2))))
    recs.append(record(END, struct.pack("<Q", len(recs))))
    return b"".join(recs)


def main():
    os.makedirs(OUT, exist_ok=True)
    whole = stream([0, 2 * CHUNK])
    seeds = {
        "whole": b"\x01" + whole,
        "whole_small_chunks": b"\x08" + whole,
        "no_chunks": b"\x41" + stream([]),
        "truncated": b"\x21" + whole[: len(whole) // 2],
        "regs_only_after_header": b"\x11" + whole[:48],
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
