#!/usr/bin/env python3
"""Static file server for the image tests and benches (stdlib only).

Serves --root over HTTP/1.1 on 127.0.0.1 with the parts of HTTP a download cache relies on:
single byte ranges (Range, If-Range with an ETag or a date), ETag/Last-Modified, and
conditional GET (If-None-Match, If-Modified-Since -> 304). Bodies go out with sendfile, so
the server is not the bottleneck of a loopback benchmark.

Misbehaviour switches, from the command line or at run time through the control endpoint
(`POST /_ctl` with a JSON object of the same names; `GET /_ctl` returns the current values):
  drop_after N     close the connection after N body bytes of a file response
  drop_count K     ... for the next K such responses (default 1; -1: always)
  ignore_range     answer 200 with the whole file to Range requests
  wrong_sums       serve every *SUMS* file with each hash's first digit changed
  no_etag          send no ETag header (Last-Modified only)
  no_length        send no Content-Length for files (body ends when the connection closes)
  rate             send file bodies at about this many bytes per second (0: full speed)
  status           {"/path": 404, ...} answer these paths with that status and no file
Each request is logged as one JSON line (method, path, status, bytes = body bytes sent,
range, if_range, if_none_match, if_modified_since) to --log. Once listening, prints
`URL http://127.0.0.1:PORT` on stdout. Stops on SIGTERM/SIGINT.
"""
import argparse
import email.utils
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.root = os.path.realpath(args.root)
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.cfg = {
            "drop_after": args.drop_after,
            "drop_count": args.drop_count,
            "ignore_range": args.ignore_range,
            "wrong_sums": args.wrong_sums,
            "no_etag": args.no_etag,
            "no_length": args.no_length,
            "rate": args.rate,
            "status": dict(args.status or []),
        }

    def take_drop(self):
        """Returns the byte count to drop after, or None; consumes one drop."""
        with self.lock:
            n = self.cfg["drop_after"]
            if n is None or self.cfg["drop_count"] == 0:
                return None
            if self.cfg["drop_count"] > 0:
                self.cfg["drop_count"] -= 1
            return int(n)

    def write_log(self, rec):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(rec) + "\n")


def wrong_sums(data):
    out = []
    for line in data.decode("utf-8", "replace").splitlines(True):
        if len(line) > 64 and line[0] in "0123456789abcdefABCDEF":
            line = ("1" if line[0] == "0" else "0") + line[1:]
        out.append(line)
    return "".join(out).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "phx-file-server/1"

    def log_message(self, fmt, *args):  # quiet: the JSONL log is the record
        pass

    def _log(self, status, sent):
        h = self.headers
        self.server.state.write_log({
            "time": time.time(), "method": self.command, "path": self.path,
            "status": status, "bytes": sent, "range": h.get("Range"),
            "if_range": h.get("If-Range"), "if_none_match": h.get("If-None-Match"),
            "if_modified_since": h.get("If-Modified-Since"),
        })

    def _simple(self, status, body=b"", ctype="text/plain", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        sent = 0
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            sent = len(body)
        self._log(status, sent)

    def do_POST(self):
        if urlsplit(self.path).path != "/_ctl":
            return self._simple(405, b"method not allowed\n")
        n = int(self.headers.get("Content-Length") or 0)
        try:
            upd = json.loads(self.rfile.read(n) or b"{}")
            with self.server.state.lock:
                for k, v in upd.items():
                    if k not in self.server.state.cfg:
                        raise ValueError("unknown switch %r" % k)
                    self.server.state.cfg[k] = v
        except ValueError as e:
            return self._simple(400, (str(e) + "\n").encode())
        self._ctl_dump()

    def _ctl_dump(self):
        with self.server.state.lock:
            body = json.dumps(self.server.state.cfg).encode()
        self._simple(200, body, "application/json")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        st = self.server.state
        path = unquote(urlsplit(self.path).path)
        if path == "/_ctl":
            return self._ctl_dump()
        with st.lock:
            forced = st.cfg["status"].get(path)
            cfg = dict(st.cfg)
        if forced:
            return self._simple(int(forced), ("forced %s\n" % forced).encode())
        full = os.path.realpath(os.path.join(st.root, path.lstrip("/")))
        if not full.startswith(st.root + os.sep) or not os.path.isfile(full):
            return self._simple(404, b"not found\n")
        s = os.stat(full)
        is_sums = "SUMS" in os.path.basename(full)
        body = None
        size = s.st_size
        if is_sums and cfg["wrong_sums"]:
            with open(full, "rb") as f:
                body = wrong_sums(f.read())
            size = len(body)
        etag = '"%x-%x%s"' % (s.st_mtime_ns, s.st_size, "-w" if body is not None else "")
        lastmod = email.utils.formatdate(s.st_mtime, usegmt=True)
        validators = {"Last-Modified": lastmod}
        if not cfg["no_etag"]:
            validators["ETag"] = etag

        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if inm is not None:
            if not cfg["no_etag"] and etag in [t.strip() for t in inm.split(",")]:
                return self._simple(304, extra=validators)
        elif ims is not None:
            try:
                if int(s.st_mtime) <= email.utils.parsedate_to_datetime(ims).timestamp():
                    return self._simple(304, extra=validators)
            except (TypeError, ValueError):
                pass

        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng and not cfg["ignore_range"]:
            ifr = self.headers.get("If-Range")
            if ifr is None or ifr == validators.get("ETag") or ifr == lastmod:
                parsed = self._parse_range(rng, size)
                if parsed == "unsatisfiable":
                    return self._simple(416, extra={"Content-Range": "bytes */%d" % size})
                if parsed:
                    start, end = parsed
                    status = 206
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if cfg["no_length"]:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        for k, v in validators.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return self._log(status, 0)
        drop = None if is_sums else st.take_drop()
        count = length if drop is None else min(length, drop)
        sent = 0
        try:
            if body is not None:
                self.wfile.write(body[start:start + count])
                sent = count
            else:
                with open(full, "rb") as f:
                    if cfg["rate"]:
                        sent = self._send_slowly(f, start, count, int(cfg["rate"]))
                    else:
                        sent = self.connection.sendfile(f, start, count) if count else 0
        except (BrokenPipeError, ConnectionResetError):
            pass
        if drop is not None and sent < length:
            self.close_connection = True
            self._log(status, sent)
            self.wfile.flush()
            try:  # a hard close, as a dying server or middlebox would do it
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self._log(status, sent)

    def _send_slowly(self, f, start, count, rate):
        """Sends in 10 steps per second; for watching progress bars."""
        f.seek(start)
        sent, step = 0, max(1, rate // 10)
        while sent < count:
            data = f.read(min(step, count - sent))
            if not data:
                break
            self.wfile.write(data)
            sent += len(data)
            time.sleep(len(data) / rate)
        return sent

    @staticmethod
    def _parse_range(rng, size):
        """One range of "bytes=a-b", "bytes=a-" or "bytes=-n"; None: ignore the header."""
        if not rng.startswith("bytes=") or "," in rng:
            return None
        a, _, b = rng[6:].strip().partition("-")
        try:
            if a == "":
                n = int(b)
                return (max(0, size - n), size - 1) if n > 0 else "unsatisfiable"
            start = int(a)
            end = int(b) if b else size - 1
        except ValueError:
            return None
        if start >= size:
            return "unsatisfiable"
        return start, min(end, size - 1)


def parse_status(s):
    path, _, code = s.rpartition("=")
    if not path or not code.isdigit():
        raise argparse.ArgumentTypeError("expected /path=CODE, got %r" % s)
    return path, int(code)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--drop-after", type=int)
    ap.add_argument("--drop-count", type=int, default=1)
    ap.add_argument("--ignore-range", action="store_true")
    ap.add_argument("--wrong-sums", action="store_true")
    ap.add_argument("--no-etag", action="store_true")
    ap.add_argument("--no-length", action="store_true")
    ap.add_argument("--rate", type=int, default=0, metavar="BYTES_PER_S")
    ap.add_argument("--status", type=parse_status, action="append", metavar="/PATH=CODE")
    args = ap.parse_args()

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.state = State(args)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
    print("URL http://127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
