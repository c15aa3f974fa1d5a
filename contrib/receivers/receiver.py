#!/usr/bin/env python3
"""
An example receiver of linkpulse webhooks (Standard Webhooks), Python 3
standard library only.

    python3 receiver.py --port 9000 --secret whsec_...
    LINKPULSE_WEBHOOK_SECRET=whsec_... python3 receiver.py --port 9000

For every POST it:
  - checks webhook-timestamp is within 5 minutes of now          (else 401)
  - checks one "v1,<base64>" entry of webhook-signature is the
    HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" under
    one of the secrets (give --secret several times while rotating) (else 401)
  - answers 204 to a webhook-id it has already accepted, without
    processing the message again (an in-memory LRU of recent ids)
  - prints one line per accepted message, appends it to --log FILE
    as one JSON line if asked, and answers 204.
"""
import argparse
import base64
import binascii
import collections
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE = 5 * 60          # seconds either side of now
MAX_BODY = 1 << 20          # linkpulse payloads stay far below this
SEEN_IDS = 10000            # how many recent webhook-ids are remembered


def decode_secret(secret):
    """The HMAC key of a "whsec_<base64>" secret."""
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_"):]
    return base64.b64decode(secret, validate=True)


def verify(keys, msg_id, timestamp, signature_header, body, now=None):
    """Returns None if the message is authentic, else the reason it is not."""
    if not msg_id or not timestamp or not signature_header:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        ts = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not an integer"
    now = time.time() if now is None else now
    if abs(now - ts) > TOLERANCE:
        return "webhook-timestamp is more than 5 minutes off"
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = [base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()) for k in keys]
    for entry in signature_header.split():
        version, _, sig = entry.partition(",")
        if version != "v1":
            continue  # other versions are skipped
        for e in expected:
            if hmac.compare_digest(sig.encode(), e):
                return None
    return "no valid v1 signature"


class SeenIds:
    """A bounded, thread-safe LRU set of webhook-ids."""

    def __init__(self, size):
        self.size, self.ids, self.lock = size, collections.OrderedDict(), threading.Lock()

    def add(self, msg_id):
        """Remembers msg_id; returns False if it was already there."""
        with self.lock:
            if msg_id in self.ids:
                self.ids.move_to_end(msg_id)
                return False
            self.ids[msg_id] = True
            if len(self.ids) > self.size:
                self.ids.popitem(last=False)
            return True

    def forget(self, msg_id):
        with self.lock:
            self.ids.pop(msg_id, None)


def summary(data, limit=100):
    if isinstance(data, dict):
        text = ", ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in data.items())
    else:
        text = json.dumps(data, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "linkpulse-example-receiver"
    sys_version = ""

    def log_message(self, fmt, *args):  # one line per message is printed instead
        pass

    def reply(self, status, text=""):
        body = (text + "\n").encode() if text else b""
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        elif status != 204:
            self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        app = self.server.app
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return self.reply(411, "Content-Length required")
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return self.reply(413, "body too large")
        body = self.rfile.read(length)

        msg_id = self.headers.get("webhook-id", "")
        timestamp = self.headers.get("webhook-timestamp", "")
        problem = verify(app.keys, msg_id, timestamp, self.headers.get("webhook-signature", ""),
                         body)
        if problem:
            print(f"rejected {msg_id or '-'}: {problem}", file=sys.stderr, flush=True)
            return self.reply(401, problem)
        if not app.seen.add(msg_id):
            print(f"duplicate {msg_id}: already processed", flush=True)
            return self.reply(204)
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            app.seen.forget(msg_id)  # not processed: a retry may be handled
            return self.reply(400, f"body is not a JSON object: {e}")
        try:
            app.process(msg_id, payload)
        except Exception as e:  # a failure: let linkpulse retry the message
            app.seen.forget(msg_id)
            print(f"failed {msg_id}: {e}", file=sys.stderr, flush=True)
            return self.reply(500, "processing failed")
        self.reply(204)


class App:
    def __init__(self, keys, log_path):
        self.keys, self.log_path = keys, log_path
        self.seen = SeenIds(SEEN_IDS)
        self.lock = threading.Lock()

    def process(self, msg_id, payload):
        """What a real receiver would do with an authentic, new message."""
        mtype, data = payload.get("type", "?"), payload.get("data")
        line = {"id": msg_id, "type": mtype, "timestamp": payload.get("timestamp"),
                "data": data, "receivedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with self.lock:
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line, separators=(",", ":")) + "\n")
            print(f"{mtype} {msg_id} {summary(data)}", flush=True)


def main():
    p = argparse.ArgumentParser(description="An example receiver of linkpulse webhooks.")
    p.add_argument("--port", type=int, default=9000, help="port to listen on (default 9000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--secret", action="append", default=[],
                   help="endpoint secret whsec_...; repeat while rotating "
                        "(default: $LINKPULSE_WEBHOOK_SECRET)")
    p.add_argument("--log", metavar="FILE", help="append each accepted message as a JSON line")
    args = p.parse_args()

    secrets = args.secret or ([os.environ["LINKPULSE_WEBHOOK_SECRET"]]
                              if os.environ.get("LINKPULSE_WEBHOOK_SECRET") else [])
    if not secrets:
        p.error("give --secret whsec_... or set LINKPULSE_WEBHOOK_SECRET")
    keys = []
    for s in secrets:
        try:
            keys.append(decode_secret(s.strip()))
        except (binascii.Error, ValueError):
            p.error(f"secret {s[:10]}... is not whsec_ followed by base64")

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.app = App(keys, args.log)
    print(f"listening on http://{args.host}:{server.server_address[1]}/ "
          f"with {len(keys)} secret(s)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
