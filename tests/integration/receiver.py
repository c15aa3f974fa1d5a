"""
A scriptable webhook receiver for the integration tests (standard library
only): an HTTP/1.1 keep-alive server on 127.0.0.1 that records every request
and answers each path from a script of responses, then from that path's
default.

    rx = Receiver()
    rx.behave("/hook", {"status": 500}, {"status": 429, "headers": {"Retry-After": "2"}})
    ... point a webhook at rx.url("/hook") ...
    reqs = rx.wait_for(3, "/hook")
    assert verify(reqs[-1], secret)
    rx.close()

A response is a dict, every key optional:
  status   HTTP status (default 204)
  delay    seconds to wait before answering (or before reset)
  headers  {name: value} added to the answer
  body     bytes (or str) of the answer
  reset    True: close the socket abruptly (SO_LINGER 0, so the peer gets an
           RST) instead of answering
  hang     True: never answer; the socket stays open until close()

Paths are matched without their query string.  Every request is recorded
(headers and body read first), also those answered with reset or hang.
"""
import base64
import binascii
import collections
import hashlib
import hmac
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Request", "Receiver", "verify", "sign"]

_DEFAULT = {"status": 204, "delay": 0.0, "headers": None, "body": b""}
_KNOWN_KEYS = {"status", "delay", "headers", "body", "reset", "hang"}


def _bare(path):
    return path.split("?", 1)[0]


class Request:
    """One received request."""

    def __init__(self, path, method, headers, body, at):
        self.path = path          # as sent, query string included
        self.method = method
        self.headers = headers    # {lower-cased name: value}; repeats joined with ", "
        self.body = body
        self.at = at              # time.time() when the body was fully read
        self.msg_id = headers.get("webhook-id", "")
        self.timestamp = headers.get("webhook-timestamp", "")
        self.signatures = headers.get("webhook-signature", "").split()

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<Request {self.method} {self.path} id={self.msg_id!r} "
                f"ts={self.timestamp!r} {len(self.body)} bytes>")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False  # close() unblocks and joins the handlers itself
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "linkpulse-test-receiver"
    sys_version = ""
    rx = None  # the Receiver, set on a per-Receiver subclass

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        self.rx._track(self.connection, threading.current_thread())

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.rx._untrack(self.connection)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, OSError, ValueError):
            # the peer went away, or close() shut the socket under us
            self.close_connection = True

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("EOF in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after the chunk
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        if len(body) != n:
            raise ConnectionError("EOF in body")
        return body

    def _serve(self):
        rx = self.rx
        path = _bare(self.path)
        rx._enter(path)
        try:
            body = self._read_body()
            headers = {}
            for k, v in self.headers.items():
                k = k.lower()
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
            req = Request(self.path, self.command, headers, body, time.time())
            resp = rx._record_and_pick(req)
            delay = float(resp.get("delay") or 0)
            if delay > 0 and rx._closing.wait(delay):
                self.close_connection = True
                return
            if resp.get("hang"):
                rx._closing.wait()
                self.close_connection = True
                return
            if resp.get("reset"):
                self._reset()
                return
            self._answer(resp)
        finally:
            rx._leave(path)

    def _reset(self):
        self.close_connection = True
        conn = self.connection
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile holds a reference to the socket: drop it so close() really closes (RST)
        try:
            self.rfile.close()
        except OSError:
            pass
        conn.close()

    def _answer(self, resp):
        status = int(resp.get("status", 204))
        body = resp.get("body") or b""
        if isinstance(body, str):
            body = body.encode()
        if status in (204, 304) or 100 <= status < 200:
            body = b""
        extra = resp.get("headers") or {}
        self.send_response(status)
        names = {k.lower() for k in extra}
        for k, v in extra.items():
            self.send_header(k, str(v))
        if "content-length" not in names and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        if body and "content-type" not in names:
            self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()  # send_header("Connection", "close") sets close_connection
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class Receiver:
    """A webhook receiver on 127.0.0.1 and a free port, serving in a thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._requests = []
        self._scripts = {}    # path -> deque of responses
        self._defaults = {}   # path -> response
        self._current = collections.Counter()
        self._max = collections.Counter()
        self._current_all = 0
        self._max_all = 0
        self._conns = {}      # socket -> handler thread
        self._closed = False
        handler = type("Handler", (_Handler,), {"rx": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"receiver:{self.port}", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------- configuring

    def url(self, path="/hook"):
        if not path.startswith("/"):
            path = "/" + path
        return f"http://127.0.0.1:{self.port}{path}"

    def default(self, path, status=204, delay=0.0, headers=None, body=b""):
        """The answer for path once its script is used up (initially 204 at once)."""
        with self._lock:
            self._defaults[_bare(path)] = {"status": status, "delay": delay,
                                           "headers": dict(headers or {}), "body": body}

    def behave(self, path, *responses):
        """Appends responses to path's script, consumed one per request in order."""
        for r in responses:
            unknown = set(r) - _KNOWN_KEYS
            if unknown:
                raise ValueError(f"unknown response keys {sorted(unknown)}")
        with self._lock:
            self._scripts.setdefault(_bare(path), collections.deque()).extend(
                dict(r) for r in responses)

    def pending(self, path):
        """How many scripted responses for path are still unused."""
        with self._lock:
            return len(self._scripts.get(_bare(path), ()))

    # ------------------------------------------------------------- querying

    def _matching(self, path):
        if path is None:
            return list(self._requests)
        p = _bare(path)
        return [r for r in self._requests if r.path == path or _bare(r.path) == p]

    def requests(self, path=None):
        """A copy of the requests received (to path), in arrival order."""
        with self._lock:
            return self._matching(path)

    def wait_for(self, n, path=None, timeout=10.0):
        """Waits until at least n requests (to path) arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = self._matching(path)
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    where = f"to {path}" if path else "in all"
                    seen = collections.Counter(_bare(r.path) for r in self._requests)
                    raise AssertionError(
                        f"receiver :{self.port}: timed out after {timeout}s waiting for {n} "
                        f"request(s) {where}; got {len(got)} (all paths so far: {dict(seen)})")
                self._cond.wait(left)

    def max_concurrent(self, path=None):
        """The most requests (to path) handled at once, from the end of their
        headers until their response was sent (or the socket reset / closed)."""
        with self._lock:
            return self._max_all if path is None else self._max[_bare(path)]

    def in_flight(self, path=None):
        """How many requests (to path) are being handled right now."""
        with self._lock:
            return self._current_all if path is None else self._current[_bare(path)]

    def reset_counts(self):
        """Restarts the max_concurrent() counters from what is in flight now.
        Recorded requests are kept (clear() forgets them)."""
        with self._lock:
            self._max = collections.Counter(+self._current)
            self._max_all = self._current_all

    def clear(self):
        """Forgets the recorded requests."""
        with self._lock:
            self._requests.clear()

    # -------------------------------------------------------------- closing

    def close(self):
        """Unblocks delayed and hanging handlers, closes every connection and
        stops the server.  Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = dict(self._conns)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for t in conns.values():
            t.join(max(0.0, deadline - time.monotonic()))
        self._thread.join(2.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------- internal

    def _track(self, sock, thread):
        with self._lock:
            self._conns[sock] = thread
            closing = self._closed
        if closing:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _untrack(self, sock):
        with self._lock:
            self._conns.pop(sock, None)

    def _enter(self, path):
        with self._lock:
            self._current[path] += 1
            self._current_all += 1
            self._max[path] = max(self._max[path], self._current[path])
            self._max_all = max(self._max_all, self._current_all)

    def _leave(self, path):
        with self._lock:
            self._current[path] -= 1
            self._current_all -= 1

    def _record_and_pick(self, req):
        path = _bare(req.path)
        with self._cond:
            self._requests.append(req)
            script = self._scripts.get(path)
            resp = script.popleft() if script else self._defaults.get(path, _DEFAULT)
            self._cond.notify_all()
            return dict(resp)


# ------------------------------------------------------------------ signing


def _key(secret):
    if isinstance(secret, bytes):
        return secret
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_"):]
    return base64.b64decode(secret, validate=True)


def sign(secret, msg_id, timestamp, body):
    """The "v1,<base64>" signature of body (bytes) for this id and timestamp."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(req, secret, tolerance=300):
    """True if one of req's "v1," signatures is the HMAC-SHA256 of
    "{msg_id}.{timestamp}.{body}" under secret ("whsec_<base64 key>"), and the
    timestamp is within tolerance seconds of now (tolerance=None: no time check)."""
    try:
        ts = int(req.timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance is not None and abs(time.time() - ts) > tolerance:
        return False
    try:
        key = _key(secret)
    except (binascii.Error, ValueError):
        return False
    mac = hmac.new(key, f"{req.msg_id}.{req.timestamp}.".encode() + req.body, hashlib.sha256)
    expected = base64.b64encode(mac.digest())
    for entry in req.signatures:
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected):
            return True
    return False
