#!/usr/bin/env python3
"""Write the seed corpus for fuzz_stream: a valid small stream (raw mode) and frame lists."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))  # wire.py
from wire import VERSION, frame  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "corpus", "stream")
PAGE, PAGES, DEVICES = 4096, 16, 2


def stream():
    # HELLO: no regions, then a 32-byte name per device.
    items = [(1, struct.pack("<IIQIIII", VERSION, 12, PAGES * PAGE, DEVICES, 0, 1, 0) + b"\0" * 32 * DEVICES),
             (2, struct.pack("<QII", 0, 2, 0) + bytes(range(256)) * 32),
             (15, struct.pack("<QII", 2, 3, 0)),
             (3, struct.pack("<II", 0, 0) + b"state"),
             (5, struct.pack("<IIQ", 1, 0, 5)),
             (6, b"")]
    items += [(4, struct.pack("<II", d, 0)) for d in range(DEVICES)]
    items += [(12, b""), (14, struct.pack("<Q", 0x1234)),
              (10, struct.pack("<QQII", PAGES, 0, DEVICES, 0))]
    items.append((9, struct.pack("<Q", len(items))))
    return b"".join(frame(t, i, p) for i, (t, p) in enumerate(items))


def frame_list(items):
    return b"\x01" + b"".join(struct.pack("<BH", t, len(p)) + p for t, p in items)


os.makedirs(OUT, exist_ok=True)
seeds = {
    "raw_stream": b"\x40" + stream(),
    "frames_pages": frame_list([(2, struct.pack("<QII", 3, 1, 0) + b"\xab" * PAGE)]),
    "frames_zero": frame_list([(15, struct.pack("<QII", 5, 4, 0))]),
    # Page channel 1 of 2 (input byte 0 bit 3): its shard starts at page 256.
    "channel_frames": b"\x09" + b"".join(struct.pack("<BH", t, len(p)) + p for t, p in [
        (2, struct.pack("<QII", 256, 1, 0) + b"\xcd" * PAGE),
        (15, struct.pack("<QII", 300, 8, 0)), (5, struct.pack("<IIQ", 1, 0, 9)), (12, b"")]),
    "frames_devices": frame_list([(3, struct.pack("<II", 1, 0) + b"x" * 8), (6, b""),
                                  (4, struct.pack("<II", 0, 0)), (4, struct.pack("<II", 1, 0)),
                                  (12, b""), (14, struct.pack("<Q", 3)),
                                  (10, struct.pack("<QQII", 16, 0, 2, 0)), (9, struct.pack("<Q", 8))]),
}
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
