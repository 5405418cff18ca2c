#!/usr/bin/env python3
"""Write the seed corpus for fuzz_vfio_user: valid command sequences after VERSION."""
import os
import struct

OUT = os.path.join(os.path.dirname(__file__), "corpus", "vfio_user")
GET, SET, PROBE = 1 << 16, 1 << 17, 1 << 18
START, STOP, REPORT, STATE = 6, 7, 8, 2
DMA_MAP, DMA_UNMAP, GET_INFO, RESET, FEATURE, DATA_READ = 2, 3, 4, 13, 16, 17
REGION_INFO, IRQ_INFO, SET_IRQS, REGION_READ, REGION_WRITE = 5, 7, 8, 9, 10
LOW_POWER_ENTRY, LOW_POWER_WAKEUP, LOW_POWER_EXIT = 3, 4, 5
PCI, WITH_FDS = 4, 8  # first-byte flags: the whole PCI function; an eventfd with each message


def msg(cmd, payload=b"", msg_id=2):
    return struct.pack("<HHIII", msg_id, cmd, 16 + len(payload), 0, 0) + payload


def seq(*msgs, flags=1):
    return bytes([flags]) + b"".join(struct.pack("<H", len(m)) + m for m in msgs)


def feature(flags, data=b"", argsz=None):
    return msg(FEATURE, struct.pack("<II", argsz if argsz else 8 + len(data), flags) + data)


MAP = msg(DMA_MAP, struct.pack("<IIQQQ", 32, 3, 0, 0, 2 << 20))
seeds = {
    "map_unmap": seq(MAP, msg(DMA_UNMAP, struct.pack("<IIQQ", 24, 0, 0, 2 << 20))),
    "logging": seq(MAP,
                   feature(SET | START, struct.pack("<QII", 4096, 1, 0) + struct.pack("<QQ", 0, 2 << 20)),
                   feature(GET | REPORT, struct.pack("<QQQ", 0, 2 << 20, 4096), argsz=8 + 24 + 64),
                   feature(SET | STOP)),
    "logging_all_maps": seq(MAP, feature(SET | START, struct.pack("<QII", 4096, 0, 0)),
                            feature(GET | REPORT, struct.pack("<QQQ", 0, 2 << 20, 2 << 20), argsz=40)),
    "info_reset_probe": seq(msg(GET_INFO, struct.pack("<IIII", 16, 0, 0, 0)), msg(RESET),
                            feature(PROBE | SET | START), feature(GET | STATE, argsz=16),
                            msg(DATA_READ, struct.pack("<II", 24, 16))),
    "pci_regions": seq(msg(REGION_INFO, struct.pack("<IIIIQQ", 80, 0, 2, 0, 0, 0)),
                       msg(REGION_READ, struct.pack("<QII", 0, 0, 8)),
                       msg(REGION_WRITE, struct.pack("<QII", 4, 7, 2) + b"\x06\x00"),
                       msg(REGION_WRITE, struct.pack("<QII", 0x1c, 0, 4) + struct.pack("<I", 0x100)),
                       msg(REGION_READ, struct.pack("<QII", 0x1000, 2, 16)), flags=1 | PCI),
    "pci_irqs": seq(msg(IRQ_INFO, struct.pack("<IIII", 16, 0, 2, 0)),
                    msg(SET_IRQS, struct.pack("<IIIII", 20, 4 | 32, 2, 0, 1)),
                    msg(REGION_WRITE, struct.pack("<QII", 0x1c, 0, 4) + struct.pack("<I", 0)),
                    msg(SET_IRQS, struct.pack("<IIIII", 20, 1 | 8, 0, 0, 1)), flags=1 | PCI | WITH_FDS),
    "pci_low_power": seq(feature(SET | LOW_POWER_WAKEUP, struct.pack("<iI", 0, 0)),
                         msg(REGION_READ, struct.pack("<QII", 0, 0, 4)),
                         feature(SET | LOW_POWER_ENTRY), feature(SET | LOW_POWER_EXIT),
                         flags=1 | PCI | WITH_FDS),
    "version_again": seq(msg(1, struct.pack("<HH", 0, 0) + b'{"capabilities":{}}\0'), flags=0),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
