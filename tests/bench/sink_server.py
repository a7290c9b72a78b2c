#!/usr/bin/env python3
"""Plain HTTP sink for tests/bench/bench_upload: the ceiling of an upload over loopback.

Any POST: reads Content-Length body bytes into one reused 1 MiB buffer and throws them
away (no parsing, no file), then answers 200 with a Proxmox-shaped JSON body, so an upload
measured against it is limited by the client and the kernel, not the server. Refuses a
chunked or length-less body (411), as Proxmox does. Prints `URL http://127.0.0.1:PORT` once
listening; stops on SIGTERM.
"""
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = self.headers.get("Content-Length")
        if n is None or "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            self.close_connection = True
            return self._answer(411, {"data": None, "message": "length required"})
        left = int(n)
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while left:
            got = self.rfile.readinto(view[:min(left, len(buf))])
            if not got:
                self.close_connection = True
                return
            left -= got
        self._answer(200, {"data": "UPID:sink:00000000:00000000:00000000:imgcopy::bench@pam:",
                           "bytes": int(n)})


def main():
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
    print("URL http://127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
