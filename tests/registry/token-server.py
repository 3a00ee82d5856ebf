#!/usr/bin/env python3
"""A token server for distribution's token auth (docs/spec/auth/token.md), for berth's registry tests.

It makes a self-signed RSA certificate (written to --cert-out for the registry's `rootcertbundle`) and
answers GET <realm>?service=..&scope=.. with a JWT (RS256, the certificate in the `x5c` header) whose
`access` claim grants the requested scopes, and POST <realm> (grant_type=refresh_token) the same way.

  --user NAME:PASSWORD   Basic credentials it accepts (repeatable); wrong ones get 401
  --anonymous-pull       without credentials, grant pull (only) instead of refusing
  --refresh-token TOKEN  the refresh token it accepts on POST
  --deny REPO            never grant anything on this repository (the token comes back with no access)
  --port-file PATH       where to write the port once listening (port 0 = any free port)

GET /stats answers {"requests": N, "scopes": {"repository:a:pull": n, ...}} (counted per scope set).
"""
import argparse, signal, base64, datetime, json, os, threading, time, uuid
from serve import serve
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse, parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, padding
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth test token issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


class State:
    def __init__(self, args):
        self.args = args
        self.key, self.cert = make_cert()
        self.users = dict(u.split(":", 1) for u in args.user)
        self.lock = threading.Lock()
        self.requests = 0
        self.scopes = {}

    def count(self, scopes):
        with self.lock:
            self.requests += 1
            k = " ".join(sorted(scopes))
            self.scopes[k] = self.scopes.get(k, 0) + 1

    def token(self, subject, scopes, pull_only):
        access = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3:
                continue
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if name in self.args.deny:
                continue
            if pull_only:
                actions = [a for a in actions if a == "pull"]
            if actions:
                access.append({"type": typ, "name": name, "actions": actions})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": self.args.issuer, "sub": subject, "aud": self.args.service, "exp": now + self.args.expires_in,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        st = self.server.state
        u = urlparse(self.path)
        if u.path == "/stats":
            with st.lock:
                return self.reply(200, {"requests": st.requests, "scopes": st.scopes})
        if u.path != "/token":
            return self.reply(404, {"details": "no such path"})
        q = parse_qs(u.query)
        scopes = q.get("scope", [])
        st.count(scopes)
        if q.get("service", [""])[0] != st.args.service:
            return self.reply(400, {"details": "unknown service"})
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if st.users.get(user) != password:
                return self.reply(401, {"details": "incorrect username or password"})
            return self.reply(200, {"token": st.token(user, scopes, False), "expires_in": st.args.expires_in})
        if st.args.anonymous_pull or not st.users:
            return self.reply(200, {"token": st.token("", scopes, bool(st.users)), "expires_in": st.args.expires_in})
        return self.reply(401, {"details": "authentication required"})

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(n).decode())
        scopes = " ".join(form.get("scope", [])).split()
        st.count(scopes)
        if form.get("grant_type", [""])[0] != "refresh_token" or not st.args.refresh_token \
                or form.get("refresh_token", [""])[0] != st.args.refresh_token:
            return self.reply(401, {"error": "invalid_grant", "error_description": "bad refresh token"})
        return self.reply(200, {"access_token": st.token("refresh-user", scopes, False), "expires_in": st.args.expires_in})


def main():
    # a parent that runs on a thread with signals blocked passes the mask on: take SIGTERM and SIGINT back
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--cert-out", required=True)
    p.add_argument("--issuer", default="berth-test-issuer")
    p.add_argument("--service", default="berth-test-registry")
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--anonymous-pull", action="store_true")
    p.add_argument("--refresh-token", default="")
    p.add_argument("--deny", action="append", default=[])
    p.add_argument("--expires-in", type=int, default=300)
    args = p.parse_args()
    state = State(args)
    with open(args.cert_out, "wb") as f:
        f.write(state.cert.public_bytes(serialization.Encoding.PEM))
    serve(Handler, args.port, args.port_file, state)


if __name__ == "__main__":
    main()
