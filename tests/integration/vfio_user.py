#!/usr/bin/env python3
"""`dmalog serve` against a vfio-user client written here from the canonical spec (QEMU's
docs/interop/vfio-user.rst), in another process, as a VMM would be:

  - VERSION with QEMU's own capabilities, DMA_MAP of a memfd, DEVICE_GET_INFO;
  - the PCI function: BAR2's region info with its fd and sparse mmap area (the client's
    mapping and REGION_READ see the same memory), bus mastering turned on by a config-space
    REGION_WRITE, an MSI-X eventfd signalled by the device's doorbell, low power with a
    wakeup eventfd that a region access fires;
  - the device writes the client's memory by DMA, and a REPORT (bitmap inline) has the bit
    of every page it changed, and no page it left alone; no DMA once it is stopped;
  - a device's state saved through MIG_DATA_READ from one `dmalog serve` and loaded through
    MIG_DATA_WRITE into a second one (the device checks the stream when RESUMING ends), and
    a damaged copy of it refused there;
  - `dmalog migrate --device vfio-user:A --dest-device vfio-user:B` between two more
    `dmalog serve` processes, verified (pages and the device's state hash, read from its BAR0
    by each end), and the same as two processes (--listen / --connect), each end naming its
    own server;
  - a client that sends garbage, one that passes too many fds and one that leaves mid-logging:
    the server answers or ends that connection, and serves the next client, logging off.

Usage: vfio_user.py path/to/dmalog. Every wait is bounded.
"""
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

DMALOG = sys.argv[1]
VERSION, DMA_MAP, GET_INFO, RESET, FEATURE, DATA_READ, DATA_WRITE = 1, 2, 4, 13, 16, 17, 18
REGION_INFO, SET_IRQS, REGION_READ, REGION_WRITE = 5, 8, 9, 10
BAR0, BAR2, CONFIG, MSIX = 0, 2, 7, 2
LOW_POWER_WITH_WAKEUP = 4
GET, SET = 1 << 16, 1 << 17
MIGRATION, STATE, START, STOP, REPORT = 1, 2, 6, 7, 8
S_STOP, S_STOP_COPY, S_RESUMING = 1, 3, 4
QEMU_CAPS = (b'{"capabilities":{"migration":{"pgsize":4096,"max_bitmap_size":268435456},'
             b'"max_msg_fds":16,"max_data_xfer_size":1048576,"pgsizes":4096,'
             b'"max_dma_maps":65535,"write_multiple":true}}\0')
results = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    results["passed" if cond else "failed"] += 1
    print(("ok   " if cond else "FAIL ") + name + ("" if cond or not detail else ": " + detail))


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.id = 0

    def read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def call(self, cmd, payload=b"", fds=()):
        """(errno, reply payload) of one command."""
        self.id = (self.id + 1) & 0xffff
        msg = struct.pack("<HHIII", self.id, cmd, 16 + len(payload), 0, 0) + payload
        if fds:
            socket.send_fds(self.sock, [msg], list(fds))
        else:
            self.sock.sendall(msg)
        rid, rcmd, size, flags, err = struct.unpack("<HHIII", self.read_exact(16))
        assert rid == self.id and rcmd == cmd and flags & 0xf == 1, (rid, rcmd, flags)
        body = self.read_exact(size - 16)
        return (err if flags & 0x20 else 0), body

    def call_recv_fds(self, cmd, payload):
        """(errno, reply payload, fds that came with it) of one command."""
        self.id = (self.id + 1) & 0xffff
        self.sock.sendall(struct.pack("<HHIII", self.id, cmd, 16 + len(payload), 0, 0) + payload)
        head, fds, _, _ = socket.recv_fds(self.sock, 16, 4)
        head += self.read_exact(16 - len(head))
        rid, rcmd, size, flags, err = struct.unpack("<HHIII", head)
        assert rid == self.id and rcmd == cmd and flags & 0xf == 1, (rid, rcmd, flags)
        return (err if flags & 0x20 else 0), self.read_exact(size - 16), fds

    def region_read(self, region, offset, count):
        err, body = self.call(REGION_READ, struct.pack("<QII", offset, region, count))
        return body[16:] if err == 0 else None

    def region_write(self, region, offset, data):
        return self.call(REGION_WRITE, struct.pack("<QII", offset, region, len(data)) + data)[0]

    def version(self):
        return self.call(VERSION, struct.pack("<HH", 0, 0) + QEMU_CAPS)

    def feature(self, flags, data=b"", argsz=None):
        return self.call(FEATURE, struct.pack("<II", argsz or 8 + len(data), flags) + data)

    def set_state(self, state):
        return self.feature(SET | STATE, struct.pack("<Ii", state, -1))[0]

    def close(self):
        self.sock.close()


def serve(path, *extra):
    proc = subprocess.Popen([DMALOG, "serve", "--socket", path] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    line = proc.stdout.readline().decode() if ready else ""
    check("serve " + os.path.basename(path) + ": listening", line.startswith("serving a"), line)
    return proc


def stop(proc, name):
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    check(name + ": exits 0 on SIGTERM", proc.returncode == 0, err.decode(errors="replace"))
    return out.decode(errors="replace")


def main():
    work = tempfile.mkdtemp(prefix="dmalog-vfu-")
    src_path, dst_path = os.path.join(work, "src.sock"), os.path.join(work, "dst.sock")
    src = serve(src_path, "--device", "storage", "--dma-rate", "2000")
    dst = serve(dst_path, "--device", "storage")
    guest = os.memfd_create("guest")
    os.ftruncate(guest, 2 << 20)

    c = Client(src_path)
    err, body = c.version()
    check("version: accepted", err == 0 and body[:2] == b"\0\0" and b'"max_msg_fds":8' in body,
          repr(body))
    err, _ = c.call(DMA_MAP, struct.pack("<IIQQQ", 32, 3, 0, 0, 2 << 20), [guest])
    check("dma map with an fd", err == 0, str(err))
    err, body = c.call(GET_INFO, struct.pack("<IIII", 16, 0, 0, 0))
    check("device info: reset, PCI, 9 regions, 5 interrupt types",
          err == 0 and struct.unpack("<IIII", body)[1:] == (3, 9, 5), repr(body))
    err, body, fds = c.call_recv_fds(REGION_INFO, struct.pack("<IIIIQQ", 32 + 16 + 16, 0, BAR2,
                                                               0, 0, 0))
    argsz, flags, _, cap_off, size, _ = struct.unpack("<IIIIQQ", body[:32]) if len(body) >= 32 \
        else (0,) * 6
    area = struct.unpack("<HHIIIQQ", body[32:64]) if len(body) >= 64 else ()
    check("BAR2: mappable with its fd, a sparse area past its first page",
          err == 0 and len(fds) == 1 and flags & 0xf == 0xf and cap_off == 32 and
          size == 65536 and area == (1, 1, 0, 1, 0, 4096, 61440), repr((err, body, fds)))
    if fds:
        import mmap
        bar2 = mmap.mmap(fds[0], 65536)
        bar2[0x2000:0x2008] = b"mappable"
        check("BAR2: the mapping and REGION_READ are the same memory",
              c.region_read(BAR2, 0x2000, 8) == b"mappable")
        bar2.close()
        os.close(fds[0])
    check("BAR0 identifies the device", c.region_read(BAR0, 0, 4) == b"DMLG")
    irq = os.eventfd(0, os.EFD_NONBLOCK)
    err, _ = c.call(SET_IRQS, struct.pack("<IIIII", 20, 4 | 32, MSIX, 1, 1), [irq])
    check("an MSI-X vector gets an eventfd", err == 0, str(err))
    c.region_write(BAR0, 0x1c, struct.pack("<I", 1))
    check("the doorbell signals it", select.select([irq], [], [], 2)[0] == [irq])
    os.close(irq)
    check("bus mastering on (config space)", c.region_write(CONFIG, 4, struct.pack("<H", 6)) == 0)
    err, body = c.feature(GET | MIGRATION, argsz=16)
    check("migration flags", err == 0 and struct.unpack("<Q", body[8:16])[0] & 1, repr(body))
    # Written after `started` means logged; reported means written after `before`.
    before = os.pread(guest, 2 << 20, 0)
    err, _ = c.feature(SET | START, struct.pack("<QII", 4096, 0, 0))
    check("logging started on every map", err == 0, str(err))
    started = os.pread(guest, 2 << 20, 0)
    time.sleep(0.3)
    during = os.pread(guest, 2 << 20, 0)
    err, body = c.feature(GET | REPORT, struct.pack("<QQQ", 0, 2 << 20, 4096), 8 + 24 + 64)
    after = os.pread(guest, 2 << 20, 0)
    check("report: bitmap inline", err == 0 and len(body) == 32 + 64, str(err))
    bits = int.from_bytes(body[32:], "little")
    reported = {p for p in range(512) if bits >> p & 1}

    def changed(a, b):
        return {p for p in range(512) if a[p * 4096:(p + 1) * 4096] != b[p * 4096:(p + 1) * 4096]}
    check("DMA wrote the client's memory", len(changed(started, during)) > 10,
          str(len(changed(started, during))))
    check("every page DMA changed is reported", changed(started, during) <= reported,
          str(sorted(changed(started, during) - reported)[:8]))
    check("no page is reported that DMA left alone", reported <= changed(before, after),
          str(sorted(reported - changed(before, after))[:8]))
    err, _ = c.feature(SET | STOP)
    check("logging stopped", err == 0, str(err))
    wake = os.eventfd(0, os.EFD_NONBLOCK)
    err, _ = c.call(FEATURE, struct.pack("<IIiI", 16, SET | LOW_POWER_WITH_WAKEUP, 0, 0), [wake])
    check("low power with a wakeup eventfd", err == 0, str(err))
    check("asleep: nothing signalled", select.select([wake], [], [], 0.1)[0] == [])
    c.region_read(BAR0, 0, 4)
    check("a region access wakes it: signalled", select.select([wake], [], [], 2)[0] == [wake])
    os.close(wake)

    # The device's state, saved on one server and loaded on the other.
    check("stop-copy", c.set_state(S_STOP_COPY) == 0)
    still = os.pread(guest, 2 << 20, 0)
    time.sleep(0.2)
    check("no DMA once the device is stopped", os.pread(guest, 2 << 20, 0) == still)
    stream = b""
    while True:
        err, body = c.call(DATA_READ, struct.pack("<II", 8 + 65536, 65536))
        if err:
            break
        size = struct.unpack("<II", body[:8])[1]
        stream += body[8:8 + size]
        if size < 65536:
            break
    check("state read to its end", err == 0 and len(stream) > 1 << 20, "%d, %d" % (err, len(stream)))
    c.close()

    def load(data, name):
        d = Client(dst_path)
        d.version()
        # A device whose last stream was refused is in ERROR: only a reset brings it back.
        ok = d.call(RESET)[0] == 0 and d.set_state(S_RESUMING) == 0
        for off in range(0, len(data), 1 << 20):
            chunk = data[off:off + (1 << 20)]
            ok &= d.call(DATA_WRITE, struct.pack("<II", 8, len(chunk)) + chunk)[0] == 0
        result = d.set_state(S_STOP)
        d.close()
        return ok, result

    damaged = bytearray(stream)
    damaged[len(damaged) // 2] ^= 1
    ok, result = load(bytes(damaged), "damaged")
    check("a damaged state is refused when RESUMING ends", ok and result != 0, str(result))
    ok, result = load(stream, "intact")
    check("the intact state loads", ok and result == 0, str(result))

    # Hostile clients: garbage, too many fds, leaving mid-logging. The server goes on.
    g = Client(src_path)
    g.sock.sendall(struct.pack("<HHIII", 1, VERSION, 8, 0, 0))
    g.sock.settimeout(5)
    check("a size under the header's ends that connection", g.sock.recv(1) == b"")
    g.close()
    h = Client(src_path)
    h.version()
    fds = [os.memfd_create("x") for _ in range(9)]
    err, _ = h.call(GET_INFO, struct.pack("<IIII", 16, 0, 0, 0), fds)
    for fd in fds:
        os.close(fd)
    check("too many fds: refused, connection kept", err != 0 and
          h.call(GET_INFO, struct.pack("<IIII", 16, 0, 0, 0))[0] == 0)
    h.call(DMA_MAP, struct.pack("<IIQQQ", 32, 3, 0, 0, 2 << 20), [guest])
    check("mid-logging client", h.feature(SET | START, struct.pack("<QII", 4096, 0, 0))[0] == 0)
    h.close()
    n = Client(src_path)
    n.version()
    n.call(DMA_MAP, struct.pack("<IIQQQ", 32, 3, 0, 0, 2 << 20), [guest])
    check("the next client finds logging off",
          n.feature(SET | START, struct.pack("<QII", 4096, 0, 0))[0] == 0)
    n.close()
    # A whole migration of a vfio-user device, between two more server processes.
    a_path, b_path = os.path.join(work, "a.sock"), os.path.join(work, "b.sock")
    a, b = serve(a_path), serve(b_path)
    mig = subprocess.run([DMALOG, "migrate", "--mem", "64M", "--device", "nic",
                          "--device", "vfio-user:" + a_path, "--dest-device", "vfio-user:" + b_path],
                         capture_output=True, timeout=300)
    text = mig.stdout.decode(errors="replace")
    check("migrate: a vfio-user device migrated and verified",
          mig.returncode == 0 and "migrated and verified" in text and "0 devices mismatched" in text,
          text + mig.stderr.decode(errors="replace"))
    # The same as two processes, each end naming its own server with --device.
    c_path, d_path, m_path = (os.path.join(work, n) for n in ("c.sock", "d.sock", "m.sock"))
    c, d = serve(c_path), serve(d_path)
    dest = subprocess.Popen([DMALOG, "migrate", "--listen", m_path, "--mem", "32M", "--device",
                             "vfio-user:" + d_path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    for _ in range(500):
        if os.path.exists(m_path):
            break
        time.sleep(0.02)
    mig2 = subprocess.run([DMALOG, "migrate", "--connect", m_path, "--mem", "32M", "--device",
                           "vfio-user:" + c_path], capture_output=True, timeout=300)
    try:
        dest_out = dest.communicate(timeout=60)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        dest.kill()
        dest_out = dest.communicate()[0].decode(errors="replace")
    check("migrate --listen/--connect: each end's own vfio-user server, verified",
          mig2.returncode == 0 and dest.returncode == 0 and
          "0 pages and 0 devices mismatched" in dest_out,
          mig2.stdout.decode(errors="replace") + dest_out)
    stop(c, "two-process source server")
    stop(d, "two-process destination server")
    a_out, b_out = stop(a, "migration source server"), stop(b, "migration destination server")
    # (Their state hashes differ by now: the destination's device has run since the proof.)
    writes = [int(line.split(", ")[-1].split()[0]) for line in (a_out + b_out).splitlines()
              if "DMA writes" in line]
    check("the source's device DMAed through it; the destination's never by itself",
          len(writes) == 2 and writes[0] > 0 and writes[1] == 0, a_out + b_out)
    out = stop(src, "source server")
    check("source server: says each client's end", "client 1: gone" in out, out)
    stop(dst, "destination server")
    os.close(guest)
    check("sockets removed", not os.listdir(work), repr(os.listdir(work)))
    os.rmdir(work)
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
