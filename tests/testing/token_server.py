#!/usr/bin/env python3
"""A small Docker registry token server for kiln's tests (python3 standard library only).

It implements the token flow of the distribution auth spec (docs/spec/auth/token.md and oauth.md)
the way Docker Hub, GitLab and Harbor answer it, closely enough that docker-registry 2.8 accepts its
tokens:

  GET  /token?service=S&scope=repository:NAME:pull,push[&scope=...]   (Basic credentials optional)
  POST /token  (application/x-www-form-urlencoded, grant_type=password | refresh_token)

Policy: valid credentials get every action they ask for; anonymous clients get `pull` only when
--anonymous-pull is given and an empty access list otherwise (as Docker Hub does for private
repositories, so the registry answers 401 again); wrong credentials or a wrong refresh token get 401.

JWTs are RS256, signed by running `openssl dgst -sha256 -sign KEY`, and carry the signing certificate
in the `x5c` header, which distribution verifies against its `rootcertbundle` (the same certificate).

distribution accepts a token up to 60 s after its `exp` (clock-skew leeway). So that tests of token
expiry and refresh do not have to wait a minute, `exp` is set to `iat + expires_in - 60`: the registry
then stops accepting a token exactly `expires_in` seconds after it was issued.

Control endpoints for tests (never logged): GET /__requests returns one line per token request,
"METHOD GRANT ACCOUNT SCOPE..." (never a password or token); DELETE /__requests clears the log.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LEEWAY = 60  # distribution's registry/auth/token Leeway


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    def __init__(self, args):
        self.args = args
        with open(args.cert, "rb") as f:
            pem = f.read().decode()
        body = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
        self.x5c = [body]  # base64 (standard) DER, as RFC 7515 section 4.1.6 asks
        self.log = []
        self.lock = threading.Lock()

    def sign(self, data: bytes) -> bytes:
        # openssl reads the payload from stdin; the private key never leaves its file.
        p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.args.key],
                           input=data, capture_output=True, check=True)
        return p.stdout

    def issue(self, account, scopes):
        now = int(time.time())
        access = []
        for scope in scopes:
            granted = self.grant(account, scope)
            if granted is not None:
                access.append(granted)
        claims = {
            "iss": self.args.issuer,
            "sub": account or "",
            "aud": self.args.service,
            "exp": now + self.args.expires_in - LEEWAY,
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        token = signing_input + "." + b64url(self.sign(signing_input.encode()))
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": self.args.expires_in,
                "issued_at": issued}

    def grant(self, account, scope):
        # scope = TYPE[(CLASS)]:NAME:ACTIONS; NAME may contain ':' only in theory, so split from both ends.
        parts = scope.split(":")
        if len(parts) < 3:
            return None
        rtype, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
        rclass = ""
        if "(" in rtype and rtype.endswith(")"):
            rtype, rclass = rtype[:-1].split("(", 1)
        if account:
            allowed = [a for a in actions if a]
        elif self.args.anonymous_pull and rtype == "repository":
            allowed = [a for a in actions if a == "pull"]
        else:
            allowed = []
        if not allowed:
            return None
        entry = {"type": rtype, "name": name, "actions": allowed}
        if rclass:
            entry["class"] = rclass
        return entry

    def record(self, line):
        with self.lock:
            self.log.append(line)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    issuer: TokenIssuer = None

    def log_message(self, fmt, *args):
        sys.stderr.write("token_server: " + (fmt % args) + "\n")

    def reply(self, code, body, ctype="application/json", extra=None):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def unauthorized(self, why):
        self.reply(401, json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": why}]}),
                   extra={"WWW-Authenticate": 'Basic realm="kiln-test-token"'})

    def basic_account(self):
        """Returns (account, ok). No Authorization header is an anonymous, valid request."""
        h = self.headers.get("Authorization", "")
        if not h:
            return None, True
        if not h.lower().startswith("basic "):
            return None, False
        try:
            user, _, password = base64.b64decode(h[6:].strip()).decode().partition(":")
        except Exception:
            return None, False
        a = self.issuer.args
        if a.user and user == a.user and password == a.password:
            return user, True
        return None, False

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__requests":
            with self.issuer.lock:
                text = "".join(l + "\n" for l in self.issuer.log)
            return self.reply(200, text, "text/plain")
        if url.path != "/token":
            return self.reply(404, "{}")
        q = urllib.parse.parse_qs(url.query)
        account, ok = self.basic_account()
        scopes = q.get("scope", [])
        self.issuer.record(" ".join(["GET", "basic" if self.headers.get("Authorization") else
                                     "anonymous", account or "-"] + scopes))
        if not ok:
            return self.unauthorized("invalid username or password")
        if q.get("service", [self.issuer.args.service])[0] != self.issuer.args.service:
            return self.reply(400, json.dumps({"error": "unknown service"}))
        self.reply(200, json.dumps(self.issuer.issue(account, scopes)))

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if url.path != "/token":
            return self.reply(404, "{}")
        form = urllib.parse.parse_qs(body)
        grant = form.get("grant_type", [""])[0]
        scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
        a = self.issuer.args
        account = None
        if grant == "password":
            user = form.get("username", [""])[0]
            ok = bool(a.user) and user == a.user and form.get("password", [""])[0] == a.password
            account = user if ok else None
        elif grant == "refresh_token":
            ok = bool(a.refresh_token) and form.get("refresh_token", [""])[0] == a.refresh_token
            account = a.user if ok else None
        else:
            ok = False
        self.issuer.record(" ".join(["POST", grant or "-", account or "-"] + scopes))
        if not ok:
            return self.reply(401, json.dumps({"error": "invalid_grant"}))
        answer = self.issuer.issue(account, scopes)
        del answer["token"]  # the OAuth2 form answers with access_token only
        if grant == "password" and form.get("access_type", [""])[0] == "offline" and a.refresh_token:
            answer["refresh_token"] = a.refresh_token
        self.reply(200, json.dumps(answer))

    def do_DELETE(self):
        if urllib.parse.urlsplit(self.path).path == "/__requests":
            with self.issuer.lock:
                self.issuer.log.clear()
            return self.reply(200, "")
        self.reply(404, "{}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port-file", required=True, help="written with the bound port once listening")
    p.add_argument("--cert", required=True, help="PEM certificate of the signing key (x5c)")
    p.add_argument("--key", required=True, help="PEM RSA private key")
    p.add_argument("--issuer", default="kiln-test-issuer")
    p.add_argument("--service", default="kiln-test-registry")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--anonymous-pull", action="store_true")
    p.add_argument("--expires-in", type=int, default=300)
    p.add_argument("--refresh-token", default="", help="accepted by grant_type=refresh_token")
    args = p.parse_args()

    Handler.issuer = TokenIssuer(args)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)  # atomic: the harness never reads a half-written port
    server.serve_forever()


if __name__ == "__main__":
    main()
