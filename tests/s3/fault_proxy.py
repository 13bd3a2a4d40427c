#!/usr/bin/env python3
"""A fault-injecting HTTP proxy on loopback between mailvault and a real S3 server (issue #6).

Forwards HTTP/1.1 requests one by one (keep-alive kept) to --upstream, and spoils every
--every-th request, in turn (a request that was spoiled passes when it is sent again, so a
client that retries always gets through):
  slowdown  reads the whole request, answers 503 with S3's SlowDown error body
  reset     reads part of the request body (or its head), then resets the connection (RST)
  stall     holds the request --stall seconds, then forwards it
  error500  reads the whole request, answers 500 InternalError
Prints the port it listens on as its first line of stdout; writes what it injected to
--stats (JSON) after each request. Stops on SIGTERM.

  fault_proxy.py --upstream 127.0.0.1:17480 [--port 0] [--every 7] [--stall 2] [--stats FILE]
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

FAULTS = ["slowdown", "reset", "stall", "error500"]


class Stats:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.requests = 0
        self.injected = {f: 0 for f in FAULTS}

    def next(self):
        with self.lock:
            self.requests += 1
            return self.requests

    def count(self, fault):
        with self.lock:
            self.injected[fault] += 1
            if self.path:
                with open(self.path + ".tmp", "w") as f:
                    json.dump({"requests": self.requests, "injected": self.injected}, f)
                os.replace(self.path + ".tmp", self.path)


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def chunked(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            return True
    return False


def read_chunked(sock, rest):
    """The raw bytes of a chunked body, up to and including the empty line after its trailers."""
    data = rest

    def need(n):
        nonlocal data
        while len(data) < n:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("peer closed inside a chunked body")
            data += chunk

    def line_end(pos):
        while data.find(b"\r\n", pos) < 0:
            need(len(data) + 1)
        return data.find(b"\r\n", pos)

    pos = 0
    while True:
        eol = line_end(pos)
        size = int(data[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            while True:  # trailers, then an empty line
                eol = line_end(pos)
                empty = eol == pos
                pos = eol + 2
                if empty:
                    return data[:pos], data[pos:]
        need(pos + size + 2)
        pos += size + 2


def read_body(sock, rest, n):
    body = rest[:n]
    rest = rest[n:]
    while len(body) < n:
        chunk = sock.recv(min(1 << 20, n - len(body)))
        if not chunk:
            raise ConnectionError("peer closed inside a body")
        body += chunk
    return body, rest


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def error_response(status, reason, code, message):
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code><Message>%s</Message>"
            "<RequestId>fault-proxy</RequestId></Error>" % (code, message)).encode()
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
            % (status, reason.encode(), len(body))) + body


spoiled = set()  # request lines spoiled once; shared by all connections (the GIL guards it)


def serve(client, upstream_addr, args, stats):
    up = None
    buf = b""
    try:
        while True:
            head, buf = read_head(client, buf)
            if head is None:
                return
            n = stats.next()
            fault = FAULTS[(n // args.every - 1) % len(FAULTS)] if n % args.every == 0 else None
            line = head.split(b"\r\n", 1)[0]
            if line in spoiled:
                # A retry of a request just spoiled goes through, whatever its number.
                spoiled.discard(line)
                fault = None
            elif fault:
                spoiled.add(line)
            length = content_length(head)
            if fault == "reset":
                stats.count(fault)
                # Part of the body arrives, then the connection dies: an upload cut in the middle.
                if length:
                    try:
                        read_body(client, buf, min(length, max(1, length // 2)))
                    except ConnectionError:
                        pass
                reset(client)
                return
            body, buf = read_body(client, buf, length)
            if fault == "slowdown":
                stats.count(fault)
                client.sendall(error_response(503, "Slow Down", "SlowDown",
                                              "Please reduce your request rate."))
                continue
            if fault == "error500":
                stats.count(fault)
                client.sendall(error_response(500, "Internal Server Error", "InternalError",
                                              "We encountered an internal error."))
                continue
            if fault == "stall":
                stats.count(fault)
                time.sleep(args.stall)
            if up is None:
                up = socket.create_connection(upstream_addr)
            up.sendall(head + body)
            method = head.split(b" ", 1)[0]
            rhead, rest = read_head(up, b"")
            if rhead is None:
                return
            status = int(rhead.split(b" ", 2)[1])
            if method != b"HEAD" and status not in (204, 304) and chunked(rhead):
                rbody, _ = read_chunked(up, rest)
            else:
                rlen = 0 if method == b"HEAD" or status in (204, 304) else content_length(rhead)
                rbody, _ = read_body(up, rest, rlen)
            client.sendall(rhead + rbody)
            if b"connection: close" in rhead.lower():
                return
    except (ConnectionError, OSError):
        return
    finally:
        for s in (client, up):
            try:
                if s:
                    s.close()
            except OSError:
                pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--every", type=int, default=7)
    p.add_argument("--stall", type=float, default=2.0)
    p.add_argument("--stats", default="")
    args = p.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    upstream = (host, int(port))
    stats = Stats(args.stats)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    print(srv.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c, upstream, args, stats), daemon=True).start()


if __name__ == "__main__":
    main()
