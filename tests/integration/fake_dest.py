#!/usr/bin/env python3
"""A destination that takes the whole stream and then misbehaves at the hand-off.

Usage: fake_dest.py SOCKET-PATH silent|close
  silent  after COMPLETE, says nothing and keeps the connection open (for at most 20 s)
  close   after COMPLETE, hangs up without a word
Either way the source cannot know whether the guest runs here, so it must stay paused.
Loopback only; every wait is bounded.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire import HDR, parse_header  # noqa: E402

COMPLETE = 12


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def main():
    path, mode = sys.argv[1], sys.argv[2]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(20)
    print("waiting", flush=True)
    conn, _ = srv.accept()
    conn.settimeout(20)
    while True:
        hdr = read_exact(conn, HDR)
        if hdr is None:
            return 1
        ftype, _seq, length = parse_header(hdr)
        if length and read_exact(conn, length) is None:
            return 1
        if ftype == COMPLETE:
            break
    if mode == "close":
        conn.close()
    else:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if not conn.recv(65536):
                    break
            except socket.timeout:
                break
    os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
