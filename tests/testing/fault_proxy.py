#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for kiln's registry tests (python3 standard library only).

It sits between a client and one upstream registry, streams request and response bodies in chunks
(Content-Length and chunked request bodies, HEAD, keep-alive, Expect: 100-continue) and injects the
faults a test asks for. The grammar is documented in tests/testing/registry_server.h; in short:

    spec  := rule { ";" rule }                      (an empty spec removes every rule)
    rule  := [METHODS " "] GLOB ": " param { " " param }
    param := status=CODE | retry-after=SECONDS | reset | drop-request-after=BYTES
           | drop-after=BYTES | truncate=BYTES | flip-byte=OFFSET | delay=SECONDS
           | times=N | skip=N | chance=P

chance=P (0 < P <= 1) makes a rule fire on a match only with probability P (from --seed); when it
does not fire, the next rules are tried. Several such rules make a random mix of faults.

Rules are tried in order; the first live rule whose methods and glob match the request decides.

Control endpoints (not proxied, not logged):
    POST   /__faults    body = spec; replaces all rules (400 with a message on a bad spec)
    GET    /__faults    JSON list of rules with what is left of `times` and `skip`
    GET    /__requests  the request log, one "METHOD PATH STATUS[ FAULT]" line per request
    GET    /__stats     JSON {"request_body_bytes": N, "faults": N}: body bytes received from clients
                        (PATCH, PUT, POST) and faults injected since the last DELETE /__requests
    DELETE /__requests  clears the log
"""

import argparse
import fnmatch
import http.client
import json
import os
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "expect"}
EFFECTS = ("status", "reset", "drop-request-after", "drop-after", "truncate", "flip-byte")
INT_PARAMS = ("status", "drop-request-after", "drop-after", "truncate", "flip-byte", "times", "skip")
FLOAT_PARAMS = ("retry-after", "delay", "chance")


class SpecError(ValueError):
    pass


class Rule:
    def __init__(self, text):
        self.text = text.strip()
        m = re.match(r"^(.*?):(?:\s+|$)(.*)$", self.text)
        if not m:
            raise SpecError(f"rule {self.text!r}: expected 'METHOD GLOB: param ...' (a colon then a space)")
        matcher, params = m.group(1).strip(), m.group(2).split()
        words = matcher.split()
        if len(words) == 1:
            self.methods, self.glob = None, words[0]
        elif len(words) == 2:
            self.methods = None if words[0] == "*" else {w.upper() for w in words[0].split(",")}
            self.glob = words[1]
        else:
            raise SpecError(f"rule {self.text!r}: matcher must be 'GLOB' or 'METHODS GLOB'")
        self.params = {}
        for p in params:
            key, eq, value = p.partition("=")
            if key == "reset":
                if eq:
                    raise SpecError(f"rule {self.text!r}: 'reset' takes no value")
                self.params[key] = True
                continue
            if not eq:
                raise SpecError(f"rule {self.text!r}: parameter {p!r} needs a value")
            try:
                if key in INT_PARAMS:
                    self.params[key] = int(value)
                elif key in FLOAT_PARAMS:
                    self.params[key] = float(value)
                else:
                    raise SpecError(f"rule {self.text!r}: unknown parameter {key!r}")
            except ValueError as e:
                if isinstance(e, SpecError):
                    raise
                raise SpecError(f"rule {self.text!r}: {key} needs a number, got {value!r}")
            if self.params[key] < 0:
                raise SpecError(f"rule {self.text!r}: {key} must not be negative")
        effects = [e for e in EFFECTS if e in self.params]
        if len(effects) > 1:
            raise SpecError(f"rule {self.text!r}: at most one of {', '.join(EFFECTS)} per rule")
        if not effects and "delay" not in self.params:
            raise SpecError(f"rule {self.text!r}: no fault given")
        if "retry-after" in self.params and "status" not in self.params:
            raise SpecError(f"rule {self.text!r}: retry-after needs status=")
        self.effect = effects[0] if effects else "delay"
        self.times = self.params.pop("times", None)  # None: fires on every match
        self.skip = self.params.pop("skip", 0)
        self.chance = self.params.pop("chance", None)
        if self.chance is not None and not 0 < self.chance <= 1:
            raise SpecError(f"rule {self.text!r}: chance must be in (0, 1]")

    def matches(self, method, path):
        if self.times is not None and self.times <= 0:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return fnmatch.fnmatchcase(path, self.glob)

    def describe(self):
        return {"rule": self.text, "times_left": self.times, "skip_left": self.skip}


def parse_spec(spec):
    return [Rule(r) for r in spec.split(";") if r.strip()]


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.log = []
        self.body_bytes = 0
        self.faults = 0
        self.rng = random.Random(0)

    def pick(self, method, path):
        """Returns the rule to apply to this request, or None. Consumes one `skip` or one `times`."""
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    if rule.chance is not None and self.rng.random() >= rule.chance:
                        continue
                    if rule.skip > 0:
                        rule.skip -= 1
                        return None
                    if rule.times is not None:
                        rule.times -= 1
                    self.faults += 1
                    return rule
        return None

    def count_body(self, n):
        with self.lock:
            self.body_bytes += n

    def record(self, line):
        with self.lock:
            self.log.append(line)


class Aborted(Exception):
    """The proxy closed the client connection on purpose."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State = None
    upstream = None  # (host, port, ssl_context or None)
    upstream_netloc = ""

    def log_message(self, fmt, *args):
        sys.stderr.write("fault_proxy: " + (fmt % args) + "\n")

    def handle(self):
        try:
            super().handle()
        except (Aborted, ConnectionError, socket.timeout, ssl.SSLError, ValueError, OSError,
                http.client.HTTPException):
            pass

    def finish(self):
        try:
            super().finish()
        except (ValueError, OSError):
            pass

    # Every method goes through the same path.
    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # ---- client side helpers

    def body_pieces(self):
        """Yields the request body in pieces, decoding chunked transfer coding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                left = size
                while left:
                    data = self.rfile.read(min(left, CHUNK))
                    if not data:
                        raise ConnectionError("client closed inside a chunk")
                    left -= len(data)
                    self.state.count_body(len(data))
                    yield data
                self.rfile.readline(3)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read(min(left, CHUNK))
                if not data:
                    raise ConnectionError("client closed inside the body")
                left -= len(data)
                self.state.count_body(len(data))
                yield data

    def abort(self):
        """Closes the client connection with a TCP reset (SO_LINGER 0), like a dropped connection."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        self.connection.close()
        self.close_connection = True
        raise Aborted()

    def reply_local(self, code, body, ctype="text/plain", extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response_only(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # ---- main path

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/__"):
            return self.control(url.path)
        method, path = self.command, url.path
        rule = self.state.pick(method, path)
        fault = rule.effect if rule else None
        params = rule.params if rule else {}
        self.status_seen = "000"  # stays so when the connection is dropped before any answer
        self.recorded = False
        self.log_line = (method, path, fault)
        try:
            if fault == "reset":
                self.abort()
            if fault == "status":
                for _ in self.body_pieces():
                    pass
                if "delay" in params:
                    time.sleep(params["delay"])
                code = params["status"]
                self.status_seen = str(code)
                self.record_request()
                extra = []
                if "retry-after" in params:
                    extra.append(("Retry-After", "%g" % params["retry-after"]))
                err = {"errors": [{"code": "UNAVAILABLE" if code >= 500 else
                                   ("TOOMANYREQUESTS" if code == 429 else "UNKNOWN"),
                                   "message": "injected by fault_proxy", "detail": None}]}
                return self.reply_local(code, json.dumps(err), "application/json", extra)
            self.forward(method, params, fault)
        finally:
            self.record_request()

    def record_request(self):
        # Recorded once, as soon as the status is known and before the client can see the answer, so
        # the log's order is the order in which the client got its answers (a request the client sends
        # after seeing an answer is always logged after it), whatever the proxy's threads do.
        if self.recorded:
            return
        self.recorded = True
        method, path, fault = self.log_line
        self.state.record(f"{method} {path} {self.status_seen}" + (f" {fault}" if fault else ""))

    def forward(self, method, params, fault):
        host, port, ctx = self.upstream
        if ctx is not None:
            conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=120)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            conn.connect()
        except OSError as e:
            conn.close()
            self.close_connection = True  # the request body, if any, was not read
            self.status_seen = "502"
            return self.reply_local(502, f"fault_proxy: upstream {host}:{port}: {e}\n")
        try:
            self.forward_on(conn, method, params, fault)
        finally:
            conn.close()

    def forward_on(self, conn, method, params, fault):
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        conn.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in HOP_BY_HOP:
                conn.putheader(k, v)  # Host passes through: distribution builds Location from it
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        sent = 0
        limit = params.get("drop-request-after") if fault == "drop-request-after" else None
        for piece in self.body_pieces():
            if limit is not None and sent + len(piece) >= limit:
                piece = piece[:limit - sent]
                if piece:
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                self.abort()
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        if limit is not None:
            self.abort()  # the body was shorter than the limit: drop at its end
        if chunked:
            conn.send(b"0\r\n\r\n")

        resp = conn.getresponse()
        if "delay" in params:
            time.sleep(params["delay"])
        length = resp.getheader("Content-Length")
        has_body = method != "HEAD" and resp.status not in (204, 304) and resp.status >= 200
        out_length = int(length) if length is not None else None
        if fault == "truncate" and has_body:
            if out_length is not None:
                out_length = min(out_length, params["truncate"])
        self.status_seen = str(resp.status)
        self.record_request()
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk == "content-length":
                continue
            if lk == "location":
                v = self.rewrite_location(v)
            self.send_header(k, v)
        if out_length is not None:
            self.send_header("Content-Length", str(out_length))
        elif has_body:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if not has_body:
            return

        offset = 0
        cut = None
        if fault == "drop-after":
            cut = params["drop-after"]
        elif fault == "truncate":
            cut = params["truncate"]
        while True:
            piece = resp.read(CHUNK)
            if not piece:
                break
            if cut is not None and offset + len(piece) >= cut:
                piece = piece[:cut - offset]
            if fault == "flip-byte":
                at = params["flip-byte"] - offset
                if 0 <= at < len(piece):
                    piece = piece[:at] + bytes([piece[at] ^ 0x01]) + piece[at + 1:]
            if piece:
                self.wfile.write(piece if out_length is not None else
                                 b"%x\r\n%s\r\n" % (len(piece), piece))
            offset += len(piece)
            if cut is not None and offset >= cut:
                break
        if fault == "drop-after":
            self.wfile.flush()
            self.abort()
        if out_length is None:
            self.wfile.write(b"0\r\n\r\n")

    def rewrite_location(self, value):
        u = urllib.parse.urlsplit(value)
        if u.netloc and u.netloc == self.upstream_netloc:
            host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
            scheme = "https" if self.upstream[2] is not None else "http"
            return urllib.parse.urlunsplit((scheme, host, u.path, u.query, u.fragment))
        return value

    # ---- control endpoints

    def control(self, path):
        body = b"".join(self.body_pieces())
        st = self.state
        if path == "/__faults" and self.command == "POST":
            try:
                rules = parse_spec(body.decode())
            except SpecError as e:
                return self.reply_local(400, str(e) + "\n")
            with st.lock:
                st.rules = rules
            return self.reply_local(200, "")
        if path == "/__faults" and self.command == "GET":
            with st.lock:
                data = json.dumps([r.describe() for r in st.rules])
            return self.reply_local(200, data, "application/json")
        if path == "/__requests" and self.command == "GET":
            with st.lock:
                data = "".join(l + "\n" for l in st.log)
            return self.reply_local(200, data)
        if path == "/__requests" and self.command == "DELETE":
            with st.lock:
                st.log.clear()
                st.body_bytes = 0
                st.faults = 0
            return self.reply_local(200, "")
        if path == "/__stats" and self.command == "GET":
            with st.lock:
                data = json.dumps({"request_body_bytes": st.body_bytes, "faults": st.faults})
            return self.reply_local(200, data, "application/json")
        return self.reply_local(404, "unknown control endpoint\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="HOST:PORT of the registry")
    p.add_argument("--port-file", required=True, help="written with the bound port once listening")
    p.add_argument("--faults", default="", help="initial fault spec")
    p.add_argument("--seed", type=int, default=0, help="seed for rules with chance=")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (and --tls-key)")
    p.add_argument("--tls-key")
    p.add_argument("--upstream-ca", help="talk HTTPS to the upstream, trusting this CA")
    args = p.parse_args()

    state = State()
    state.rules = parse_spec(args.faults)
    state.rng = random.Random(args.seed)
    host, _, port = args.upstream.rpartition(":")
    ctx = ssl.create_default_context(cafile=args.upstream_ca) if args.upstream_ca else None
    Handler.state = state
    Handler.upstream = (host, int(port), ctx)
    Handler.upstream_netloc = args.upstream

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake runs in the handler thread, so a slow client cannot stall accept().
        server.socket = sctx.wrap_socket(server.socket, server_side=True,
                                         do_handshake_on_connect=False)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
