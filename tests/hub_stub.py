"""A tiny WebSub hub for tests: records every publish ping as a JSON line.

Usage: python -m tests.hub_stub PORT LOG [--fail N] [--delay SECONDS]
The first N pings get a 503 (to exercise retries); every answer waits DELAY seconds.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("log")
    parser.add_argument("--fail", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    options = parser.parse_args()
    lock = threading.Lock()
    state = {"seen": 0}

    class Hub(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            time.sleep(options.delay)
            with lock:
                state["seen"] += 1
                failing = state["seen"] <= options.fail
                with open(options.log, "a", encoding="utf-8") as log:
                    log.write(json.dumps({"mode": form.get("hub.mode", [""])[0], "url": form.get("hub.url", [""])[0],
                                          "status": 503 if failing else 204,
                                          "type": self.headers.get("Content-Type")}) + "\n")
            self.send_response(503 if failing else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", options.port), Hub).serve_forever()


if __name__ == "__main__":
    main()
