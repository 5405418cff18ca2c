#!/usr/bin/env python3
"""Write the seed corpus for fuzz_frame: short, valid command sequences it can mutate."""
import os
import struct

OUT = os.path.join(os.path.dirname(__file__), "corpus", "frame")
GET, SET, PROBE = 1 << 16, 1 << 17, 1 << 18
START, STOP, REPORT, MIG, STATE, SIZE = 6, 7, 8, 1, 2, 9
OP_FEATURE, OP_RESET, OP_DMA, OP_PRECOPY = 0, 1, 2, 3


def cmd(op, flags=0, payload=b"", ranges=(), argsz=None):
    payload = payload.ljust(32, b"\0")
    if argsz is None:
        argsz = 8 + 32
    rng = b"".join(struct.pack("<QQ", i, l) for i, l in ranges).ljust(64, b"\0")
    return struct.pack("<BII", op, argsz, flags) + payload + rng


def start(page, n, ranges):
    return cmd(OP_FEATURE, SET | START, struct.pack("<QIIQ", page, n, 0, 1), ranges, 8 + 24)


def report(iova, length, page):
    return cmd(OP_FEATURE, GET | REPORT, struct.pack("<QQQQ", iova, length, page, 1), argsz=40)


def dma(iova, length):
    return cmd(OP_DMA, 0, struct.pack("<QQ", iova, length))


def state(s):
    return cmd(OP_FEATURE, SET | STATE, struct.pack("<Ii", s, -1), argsz=16)


seeds = {
    "log_cycle": [start(4096, 2, [(0, 1 << 21), (1 << 30, 1 << 21)]), dma(8192, 1),
                  dma((1 << 30) + 5, 4096), report(0, 1 << 31, 4096), report(0, 1 << 31, 1 << 21),
                  cmd(OP_FEATURE, SET | STOP, argsz=8)],
    "huge_pages": [start(1 << 21, 1, [(0, 1 << 32)]), dma(3 << 20, 1), report(1 << 20, 1 << 23, 4096)],
    "probe": [cmd(OP_FEATURE, PROBE | SET | START, argsz=8), cmd(OP_FEATURE, PROBE | GET | REPORT),
              cmd(OP_FEATURE, GET | MIG, argsz=16), cmd(OP_FEATURE, GET | SIZE, argsz=16)],
    "fsm": [state(6), cmd(OP_PRECOPY, 0, argsz=24) , state(7), state(3), state(1), state(4),
            state(1), state(2), cmd(OP_RESET)],
    "precopy": [state(6), bytes([OP_PRECOPY]) + struct.pack("<IBBBB", 24, 1, 1, 0, 0) + b"\0" * 96],
}

os.makedirs(OUT, exist_ok=True)
for name, cmds in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b"\x03" + b"".join(c[:105] for c in cmds))
