"""A real HTTP file server on 127.0.0.1 for download tests, with knobs for misbehaving.

Stdlib only (``http.server`` in a thread).  It implements ``Range: bytes=N-``
itself, and per file it can: cut the connection after some bytes, answer 5xx
a number of times first, wait before answering (to hit client timeouts),
stall in the middle of a body, ignore ranges, or answer a range with the wrong
``Content-Range``.  Every request is logged so tests can assert what the
client asked for.  Waits are sliced and watch a stop event, so shutting the
server down never hangs on a sleeping handler.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d+)-$")


@dataclass
class Behaviour:
    """How the server treats one file.  "first N requests" counts requests for that file."""

    cut_at: int | None = None       # close the connection after sending this absolute offset
    cut_times: int = 1              # ... for the first N requests
    per_response: int | None = None # send at most this many bytes per response, then close
    fail_first: int = 0             # answer 500 to the first N requests
    fail_status: int = 500
    delay: float = 0.0              # wait this long before answering (every request)
    stall_at: int | None = None     # pause at this absolute offset mid-body ...
    stall_for: float = 0.0          # ... for this long ...
    stall_times: int = 1            # ... in the first N requests
    ranges: bool = True             # honour Range (False: always 200 with the whole file)
    wrong_range: bool = False       # answer a Range with 206 starting at byte 0
    content_type: str = "application/octet-stream"
    send_length: bool = True        # False: no Content-Length, the body ends when we close


@dataclass
class Request:
    """One logged request: which file, the Range header sent, the status answered."""

    name: str
    range: str | None
    status: int = 0


class FileServer:
    """Serve ``files`` (name -> bytes) at ``url``/<name>; see :class:`Behaviour` for the knobs."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.behaviour: dict[str, Behaviour] = {}
        self.requests: list[Request] = []
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, name: str, data: bytes, **behaviour: object) -> str:
        """Serve ``data`` as ``name``; returns its URL."""
        self.files[name] = data
        self.behaviour[name] = Behaviour(**behaviour)  # type: ignore[arg-type]
        return f"{self.url}/{name}"

    def requests_for(self, name: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.name == name]

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the server is stopping; True if it is stopping."""
        return self._stop.wait(seconds)

    def _next(self, name: str, range_header: str | None) -> tuple[int, Request]:
        with self._lock:
            self._counts[name] += 1
            request = Request(name, range_header)
            self.requests.append(request)
            return self._counts[name], request

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _simple(self, request: Request, status: int, body: bytes = b"",
                headers: dict[str, str] | None = None) -> None:
        request.status = status
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        server: FileServer = self.server.owner  # type: ignore[attr-defined]
        name = unquote(urlsplit(self.path).path.lstrip("/"))
        range_header = self.headers.get("Range")
        count, request = server._next(name, range_header)
        b = server.behaviour.get(name, Behaviour())
        if b.delay and server.wait(b.delay):
            return
        try:
            if name not in server.files:
                self._simple(request, 404, b"<html><body>404 Not Found</body></html>",
                             {"Content-Type": "text/html"})
                return
            if count <= b.fail_first:
                self._simple(request, b.fail_status, b"server error")
                return
            self._send_file(server, request, count, b, server.files[name], range_header)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_file(self, server: FileServer, request: Request, count: int, b: Behaviour,
                   data: bytes, range_header: str | None) -> None:
        start, status = 0, 200
        headers = {"Content-Type": b.content_type, "Accept-Ranges": "bytes"}
        match = _RANGE.match(range_header or "")
        if match and b.ranges:
            start = int(match.group(1))
            if start >= len(data):
                self._simple(request, 416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            if b.wrong_range:
                start = 0
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        request.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if b.send_length:
            self.send_header("Content-Length", str(len(data) - start))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

        end = len(data)
        cut = b.cut_at if b.cut_at is not None and count <= b.cut_times else None
        if cut is not None and start < cut < end:
            end = cut
        if b.per_response is not None:
            end = min(end, start + b.per_response)
        stall = b.stall_at if b.stall_at is not None and count <= b.stall_times else None
        position = start
        while position < end:
            step = min(end, position + 16384)
            if stall is not None and position < stall <= step:
                step = stall
            self.wfile.write(data[position:step])
            position = step
            if stall is not None and position == stall:
                self.wfile.flush()
                if server.wait(b.stall_for):
                    break
        self.wfile.flush()
        if end < len(data) or not b.send_length:  # close: a short body, or the end of one
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
