#!/usr/bin/env python3
"""Hostile peers against `dmalog migrate`: fake destinations and sources, a proxy that damages
the stream, a vfio-user device's server that dies mid-migration, and signals at bad moments.
UNIX sockets, and TCP loopback for a destination that never accepts; every wait and loop is
bounded.

Each case asserts a bounded end (the process exits within its timeout plus a margin), which
side runs the guest (from the source's JSON: outcome and source_running), and that nothing
is left in the temporary directory.

Usage: hostile.py path/to/dmalog
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

DMALOG = sys.argv[1]
# Sanitizer builds are slow: the margin over each timeout grows with DMALOG_TEST_MARGIN.
MARGIN = float(os.environ.get("DMALOG_TEST_MARGIN", "15"))
TIMEOUT = float(os.environ.get("DMALOG_TEST_TIMEOUT", "1"))  # --timeout given to the tool
MEM = "16M"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire import HDR, MAGIC, VERSION, crc32c, frame, parse_header  # noqa: E402

T_HELLO, T_PAGES, T_ABORT, T_COMPLETE, T_RUNNING = 1, 2, 11, 12, 13
# The Python peers here speak over one connection: dmalog facing them is told the same.
ONE = ["--channels", "1"]

WORK = tempfile.mkdtemp(prefix="dmalog-hostile-")
TMP = os.path.join(WORK, "tmp")  # the tool's TMPDIR: must be empty after every case
os.makedirs(TMP)
ENV = dict(os.environ, TMPDIR=TMP)
results = {"passed": 0, "failed": 0}


def read_exact(conn, n, deadline):
    buf = b""
    while len(buf) < n:
        conn.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = conn.recv(n - len(buf))
        except (socket.timeout, OSError):
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(conn, deadline):
    """(type, seq, whole frame bytes) or None."""
    hdr = read_exact(conn, HDR, deadline)
    if hdr is None:
        return None
    ftype, seq, length = parse_header(hdr)
    payload = read_exact(conn, length, deadline) if length else b""
    if payload is None:
        return None
    return ftype, seq, hdr + payload


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print("ok   " + name)
    else:
        results["failed"] += 1
        print("FAIL " + name + (": " + detail if detail else ""))


def tmp_empty(name):
    left = os.listdir(TMP)
    check(name + ": nothing left in TMPDIR", not left, repr(left))
    for entry in left:
        shutil.rmtree(os.path.join(TMP, entry), ignore_errors=True)


def run(args, limit):
    """Run dmalog with @args; (exit status, seconds, stdout, stderr). Killed past @limit."""
    start = time.monotonic()
    proc = subprocess.Popen([DMALOG, "migrate"] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, time.monotonic() - start, out.decode(errors="replace"), err.decode(
        errors="replace")


def listener(name):
    path = os.path.join(WORK, name)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)
    return srv, path


def fake_destination(name, behave):
    """A destination that takes the stream up to COMPLETE, then calls behave(conn)."""
    srv, path = listener(name)

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        deadline = time.monotonic() + 60
        while True:
            f = read_frame(conn, deadline)
            if f is None or f[0] == T_COMPLETE:
                break
        if f is not None:
            behave(conn)
        conn.close()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return path, t


def source_json(out):
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def expect_source(name, args, status, outcome, source_running, limit):
    rc, secs, out, err = run(args + ["--json", "--mem", MEM, "--timeout", str(TIMEOUT)],
                             limit + MARGIN)
    r = source_json(out)
    check(name + ": exit %d" % status, rc == status, "exit %s; %s %s" % (rc, out[-300:], err[-300:]))
    check(name + ": bounded", secs < limit + MARGIN, "%.1f s" % secs)
    check(name + ": outcome " + outcome, r.get("outcome") == outcome, str(r.get("error")))
    if source_running is not None:
        check(name + ": source running is %s" % source_running,
              r.get("source_running") is source_running, str(r))
    return r


# ---- the destination misbehaves at the hand-off: the guest must stay paused here ----

def partial_answer(conn):
    conn.sendall(frame(T_RUNNING, 0)[:7])  # 7 of RUNNING's 24 header bytes, then nothing
    time.sleep(TIMEOUT + MARGIN)


def drip_answer(conn):
    try:
        for b in frame(T_RUNNING, 0):
            conn.sendall(bytes([b]))
            time.sleep(0.6)
    except OSError:
        pass  # the source gave up: that is the point


for case, behave in (("partial-answer", partial_answer), ("drip-answer", drip_answer)):
    path, t = fake_destination(case, behave)
    expect_source(case, ["--connect", path, "--devices", "nic"] + ONE, 4, "unknown", False,
                  3 * TIMEOUT)
    t.join(timeout=30)
    tmp_empty(case)


# ---- a destination that stops reading: the source rolls back instead of hanging ----

srv, path = listener("never-reads")
held = []
threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
expect_source("destination-never-reads", ["--connect", path, "--mem", "64M"], 1, "rolled-back",
              True, 3 * TIMEOUT)
srv.close()
tmp_empty("destination-never-reads")

dest = subprocess.Popen([DMALOG, "migrate", "--listen", os.path.join(WORK, "stopped"),
                         "--mem", "64M"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
time.sleep(0.5)
dest.send_signal(signal.SIGSTOP)
expect_source("destination-sigstop", ["--connect", os.path.join(WORK, "stopped"), "--mem", "64M"],
              1, "rolled-back", True, 3 * TIMEOUT)
dest.send_signal(signal.SIGCONT)
dest.kill()
dest.wait()
tmp_empty("destination-sigstop")


# ---- hostile sources: the destination gives up within its timeout, and says why ----

def hostile_source(name, act, want_in_stderr=None, channels=1, status=1):
    path = os.path.join(WORK, name)
    start = time.monotonic()
    dest = subprocess.Popen([DMALOG, "migrate", "--listen", path, "--mem", MEM, "--devices",
                             "none", "--timeout", str(TIMEOUT), "--channels", str(channels)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    for _ in range(200):
        if os.path.exists(path):
            break
        time.sleep(0.02)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    stopper = threading.Thread(target=act, args=(conn,), daemon=True)
    stopper.start()
    try:
        _out, err = dest.communicate(timeout=3 * TIMEOUT + MARGIN)
    except subprocess.TimeoutExpired:
        dest.kill()
        _out, err = dest.communicate()
    secs = time.monotonic() - start
    conn.close()
    err = err.decode(errors="replace")
    check(name + ": destination exits %d" % status, dest.returncode == status,
          "exit %s: %s" % (dest.returncode, err))
    check(name + ": bounded", secs < 3 * TIMEOUT + MARGIN, "%.1f s" % secs)
    if want_in_stderr:
        check(name + ": says " + want_in_stderr, want_in_stderr in err, err)
    tmp_empty(name)


# HELLO of the destination's 16 MiB guest with no devices: three RAM regions, as the demo
# guest lays them out (low RAM, and two slots above 4 GiB with a 1 GiB hole between them).
HELLO = struct.pack("<IIQIIII", VERSION, 12, 16 << 20, 0, 3, 1, 0) + struct.pack(
    "<6Q", 0, 8 << 20, 4 << 30, 4 << 20, (4 << 30) + (4 << 20) + (1 << 30), 4 << 20)


def idle(conn):
    time.sleep(3 * TIMEOUT + MARGIN)


def hello_then_silent(conn):
    conn.sendall(frame(T_HELLO, 0, HELLO))
    time.sleep(3 * TIMEOUT + MARGIN)


def slowloris(conn):
    data = frame(T_HELLO, 0, HELLO) + frame(T_PAGES, 1, struct.pack("<QII", 0, 1, 0) + b"x" * 4096)
    try:
        for b in data:
            conn.sendall(bytes([b]))
            time.sleep(0.3)
    except OSError:
        pass


def huge_frame(conn):
    head = struct.pack("<IHHIII", MAGIC, T_PAGES, 0, 0, 1 << 31, 0)
    conn.sendall(head + struct.pack("<I", crc32c(head)))
    time.sleep(1)


hostile_source("idle-source", idle, "no whole frame")
hostile_source("hello-then-silent", hello_then_silent, "no whole frame")
hostile_source("slowloris-source", slowloris, "no whole frame")
hostile_source("huge-frame", huge_frame, "frame too large")
# Two connections expected, one made: the destination stops waiting for the second within its
# timeout, before any guest memory is touched (a setup failure, exit 5).
hostile_source("one-of-two-connections", hello_then_silent, "no connection came within", 2, 5)


# ---- a peer's words are escaped before they reach a terminal ----

def evil_abort(conn):
    conn.sendall(frame(T_ABORT, 0, b"\x1b[31mEVIL\r\nsource: rolled back (forged)\x00tail"))


srv, path = listener("evil-abort")


def evil_server():
    conn, _ = srv.accept()
    read_frame(conn, time.monotonic() + 10)  # HELLO
    evil_abort(conn)
    time.sleep(2)
    conn.close()


threading.Thread(target=evil_server, daemon=True).start()
rc, secs, out, err = run(["--connect", path, "--mem", MEM, "--timeout", str(TIMEOUT)] + ONE,
                         10 + MARGIN)
check("evil-abort: exit 1", rc == 1, "exit %s" % rc)
check("evil-abort: no raw escape, CR or NUL", not any(c in out for c in "\x1b\r\x00"), repr(out))
check("evil-abort: shown escaped", "\\x1b[31mEVIL\\x0d\\x0asource" in out, repr(out))
check("evil-abort: no line the peer forged",
      not any(line.startswith("source: rolled back (forged)") for line in out.splitlines()),
      repr(out))
srv.close()
tmp_empty("evil-abort")


# ---- a proxy that damages the stream in flight: refused at once, the source rolls back ----

def proxy(name, damage, target):
    """Forward source -> destination frame by frame; damage(frames_so_far, frame) -> bytes."""
    srv, path = listener(name)

    def serve():
        try:
            src, _ = srv.accept()
        except OSError:
            return
        dst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dst.connect(target)

        def back():
            try:
                while True:
                    data = dst.recv(65536)
                    if not data:
                        break
                    src.sendall(data)
            except OSError:
                pass
            try:
                src.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=back, daemon=True).start()
        n = 0
        deadline = time.monotonic() + 120
        try:
            while True:
                f = read_frame(src, deadline)
                if f is None:
                    break
                out = damage(n, f)
                n += 1
                if out is None:
                    break
                dst.sendall(out)
        except OSError:
            pass
        dst.shutdown(socket.SHUT_WR)
        time.sleep(3)
        src.close()
        dst.close()

    threading.Thread(target=serve, daemon=True).start()
    return path


def at_pages(n, f, action):
    """Damage the 3rd PAGES frame; pass everything else."""
    ftype, _seq, data = f
    if ftype != T_PAGES or n != 4:
        return data
    return action(data)


DAMAGE = {
    "duplicate-frame": (lambda d: d + d, "lost, repeated or reordered"),
    "dropped-frame": (lambda d: b"", "lost, repeated or reordered"),
    "flipped-byte": (lambda d: d[:100] + bytes([d[100] ^ 4]) + d[101:], "checksum mismatch"),
    "truncated-stream": (lambda d: None, "closed the connection"),
}

for case, (action, why) in DAMAGE.items():
    target = os.path.join(WORK, case + "-dest")
    dest = subprocess.Popen([DMALOG, "migrate", "--listen", target, "--mem", MEM, "--timeout",
                             str(TIMEOUT)] + ONE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=ENV)
    for _ in range(200):
        if os.path.exists(target):
            break
        time.sleep(0.02)
    path = proxy(case, lambda n, f, a=action: at_pages(n, f, a), target)
    r = expect_source("proxy-" + case, ONE + ["--connect", path, "--max-rounds", "3",
                                        "--downtime-limit", "0"], 1, "rolled-back", True,
                      4 * TIMEOUT)
    check("proxy-%s: says %s" % (case, why), why in str(r.get("error")), str(r.get("error")))
    try:
        dest.wait(timeout=3 * TIMEOUT + MARGIN)
    except subprocess.TimeoutExpired:
        dest.kill()
        dest.wait()
    check("proxy-%s: destination refused" % case, dest.returncode == 1, "exit %s" % dest.returncode)
    tmp_empty("proxy-" + case)


# ---- a vfio-user device's server dies mid-migration ----

def serve_device(name):
    path = os.path.join(WORK, name)
    proc = subprocess.Popen([DMALOG, "serve", "--socket", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    for _ in range(500):
        if os.path.exists(path):
            break
        time.sleep(0.02)
    return proc, path


for which in ("destination", "source"):
    name = "vfio-user-%s-server-killed" % which
    src_srv, src_path = serve_device(name + "-src.sock")
    dst_srv, dst_path = serve_device(name + "-dst.sock")
    events = os.path.join(WORK, name + ".events")
    # Slow enough (64 MiB at 40 MB/s) to be mid-stream when the server dies: once round 1
    # has begun (its "active" event), however slow the build.
    mig = subprocess.Popen([DMALOG, "migrate", "--json", "--mem", "64M", "--timeout", str(TIMEOUT),
                            "--max-bandwidth", "40M", "--device", "vfio-user:" + src_path,
                            "--dest-device", "vfio-user:" + dst_path, "--events", events],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    deadline = time.monotonic() + 30 + MARGIN
    while time.monotonic() < deadline and mig.poll() is None:
        if os.path.exists(events) and '"active"' in open(events).read():
            break
        time.sleep(0.02)
    time.sleep(0.2)
    (dst_srv if which == "destination" else src_srv).kill()
    try:
        out, err = mig.communicate(timeout=60 + MARGIN)
    except subprocess.TimeoutExpired:
        mig.kill()
        out, err = mig.communicate()
    r = source_json(out.decode(errors="replace"))
    check(name + ": exit 1", mig.returncode == 1, "exit %s; %s" % (mig.returncode, err.decode(errors="replace")[-300:]))
    check(name + ": not migrated", r.get("outcome") == "rolled-back", str(r.get("error")))
    # The source's guest runs again only with every device back: not when its own is gone.
    check(name + ": source running is %s" % (which == "destination"),
          r.get("source_running") is (which == "destination"), str(r.get("error")))
    for proc in (src_srv, dst_srv):
        proc.terminate()
        try:
            proc.wait(timeout=MARGIN)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    tmp_empty(name)


# ---- a destination that never takes the connection: connecting has a deadline too ----

def never_accepting(family):
    """A listener whose backlog is already full: (its address for --connect, sockets to close).
    Over TCP the kernel drops the next SYN, over a UNIX socket it refuses with EAGAIN."""
    srv = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        target = addr = os.path.join(WORK, "full-backlog")
        srv.bind(target)
    else:
        srv.bind(("127.0.0.1", 0))
        target = srv.getsockname()
        addr = "127.0.0.1:%d" % target[1]
    srv.listen(0)
    socks = [srv]
    for _ in range(4):
        c = socket.socket(family, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(target)
        except OSError:
            pass
        socks.append(c)
    return addr, socks


for family, kind in ((socket.AF_UNIX, "unix"), (socket.AF_INET, "tcp")):
    name = "never-accepting-" + kind
    addr, socks = never_accepting(family)
    r = expect_source(name, ONE + ["--connect", addr, "--devices", "none"], 5, "not-started",
                      None, TIMEOUT)
    check(name + ": says it waited", "within" in str(r.get("error")), str(r.get("error")))
    for sock in socks:
        sock.close()
    tmp_empty(name)


# ---- signals: a source killed or stopped by the operator leaves no socket directory ----

for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    name = "source-" + signal.Signals(sig).name
    proc = subprocess.Popen([DMALOG, "migrate", "--mem", "64M", "--max-rounds", "100000",
                             "--downtime-limit", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    time.sleep(1.0)
    proc.send_signal(sig)
    try:
        proc.wait(timeout=MARGIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    # The forked destination notices the dead link within its timeout and exits too.
    time.sleep(0.5)
    deadline = time.monotonic() + 30 + MARGIN
    while os.listdir(TMP) and time.monotonic() < deadline:
        time.sleep(0.1)
    tmp_empty(name)


# ---- the two-ends race of the hand-off, on one CPU with the source at nice 19 ----

if shutil.which("taskset"):
    failures = 0
    for i in range(10):
        path = os.path.join(WORK, "pinned%d" % i)
        dest = subprocess.Popen(["taskset", "-c", "0", DMALOG, "migrate", "--listen", path,
                                 "--mem", "64M", "--devices", "none"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=ENV)
        for _ in range(200):
            if os.path.exists(path):
                break
            time.sleep(0.02)
        src = subprocess.run(["taskset", "-c", "0", "nice", "-n", "19", DMALOG, "migrate",
                              "--connect", path, "--mem", "64M", "--devices", "none",
                              "--max-rounds", "2"], capture_output=True, env=ENV,
                             timeout=120 + MARGIN)
        dest.wait(timeout=60 + MARGIN)
        if src.returncode != 0 or dest.returncode != 0:
            failures += 1
            print("     run %d: source %d, destination %d: %s" % (
                i, src.returncode, dest.returncode, src.stdout.decode()[-200:]))
    check("pinned-one-cpu-nice-19: 10 of 10 migrated", failures == 0, "%d failed" % failures)
else:
    print("skip pinned-one-cpu-nice-19 (no taskset)")

shutil.rmtree(WORK, ignore_errors=True)
print("%d passed, %d failed" % (results["passed"], results["failed"]))
sys.exit(1 if results["failed"] else 0)
