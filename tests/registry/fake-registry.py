#!/usr/bin/env python3
"""A misbehaving registry for berth's registry-client tests: the failures a real registry rarely shows.

Blobs are served from --blobs DIR (file name = the digest's hex). The first path component after /v2/
picks the behaviour; the repository is "<mode>/<anything>":

  manifests:  baddigest (bytes that do not match the digest asked for), badheader (a wrong
              Docker-Content-Digest), big (5 MiB with Content-Length), bigchunked (5 MiB, chunked),
              schema1 (a signed schema1 manifest), layertype (a layer media type), sniff (an index served
              as application/json), flaky (500 on the first request of each path, then an index)
  blobs:      droponce (drops the connection half-way on the first request, honours Range),
              dropnorange (the same, but ignores Range: 200 and the whole blob again),
              dropalways (drops half-way every time), erronce (503 first), long (more bytes than the blob),
              redirect (needs Basic auth, then 307 to http://localhost:<port>/storage/<hex>, another origin)

GET /stats answers {"requests": [{"path", "range", "auth"}, ...]}.
"""
import argparse, signal, json, os, socket, threading
from serve import serve
from http.server import BaseHTTPRequestHandler

INDEX = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}).encode()
INDEX_PLAIN = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
SCHEMA1 = json.dumps({"schemaVersion": 1, "name": "x/y", "tag": "latest", "architecture": "amd64",
                      "fsLayers": [], "history": [], "signatures": []}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def record(self):
        st = self.server.state
        with st["lock"]:
            st["requests"].append({"path": self.path, "range": self.headers.get("Range"),
                                   "auth": self.headers.get("Authorization")})
            st["seen"][self.path] = st["seen"].get(self.path, 0) + 1
            return st["seen"][self.path]

    def send(self, code, body=b"", ctype="application/json", headers=None, length=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drop(self, code, body, start, cut, total_headers):
        """Sends headers for the whole body, then `cut` bytes of it, then closes the connection."""
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in total_headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:start + cut])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        n = self.record()
        st = self.server.state
        if self.path == "/stats":
            with st["lock"]:
                return self.send(200, json.dumps({"requests": st["requests"]}).encode())
        if self.path.startswith("/storage/"):
            return self.serve_blob(self.path.split("/")[-1], None)
        if self.path in ("/v2/", "/v2"):
            return self.send(200, b"{}")
        parts = self.path.split("/")
        if len(parts) < 6 or parts[1] != "v2":
            return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no such repository"}]}')
        mode, kind, ref = parts[2], parts[-2], parts[-1]
        if kind == "manifests":
            return self.manifest(mode, ref, n)
        if kind == "blobs":
            return self.blob(mode, ref.split(":")[-1], n)
        return self.send(404, b"{}")

    def manifest(self, mode, ref, n):
        oci = "application/vnd.oci.image.manifest.v1+json"
        if mode == "baddigest":
            return self.send(200, INDEX, ctype="application/vnd.oci.image.index.v1+json")
        if mode == "badheader":
            return self.send(200, INDEX, ctype="application/vnd.oci.image.index.v1+json",
                             headers={"Docker-Content-Digest": "sha256:" + "0" * 64})
        if mode == "big":
            return self.send(200, b" " * (5 << 20), ctype=oci)
        if mode == "bigchunked":
            self.send_response(200)
            self.send_header("Content-Type", oci)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            piece = b" " * 65536
            for _ in range(80):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        if mode == "schema1":
            return self.send(200, SCHEMA1, ctype="application/vnd.docker.distribution.manifest.v1+prettyjws")
        if mode == "layertype":
            return self.send(200, INDEX, ctype="application/vnd.oci.image.layer.v1.tar+gzip")
        if mode == "sniff":
            return self.send(200, INDEX_PLAIN, ctype="application/json")
        if mode == "flaky":
            if n == 1:
                return self.send(500, b'{"errors":[{"code":"UNKNOWN","message":"try again"}]}')
            return self.send(200, INDEX, ctype="application/vnd.oci.image.index.v1+json")
        return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')

    def blob(self, mode, hexdigest, n):
        if mode == "redirect":
            if not self.headers.get("Authorization"):
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                                 headers={"WWW-Authenticate": 'Basic realm="fake"'})
            port = self.server.server_address[1]
            return self.send(307, b"", headers={"Location": "http://localhost:%d/storage/%s" % (port, hexdigest)})
        return self.serve_blob(hexdigest, mode, n)

    def serve_blob(self, hexdigest, mode, n=1):
        path = os.path.join(self.server.state["blobs"], os.path.basename(hexdigest))
        if not os.path.exists(path):
            return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}')
        with open(path, "rb") as f:
            body = f.read()
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and mode not in ("dropnorange",):
            start = int(rng[6:].split("-")[0])
        headers = {}
        code = 200
        if start:
            code = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(body) - 1, len(body))
        if mode in ("droponce", "dropnorange") and n == 1 or mode == "dropalways":
            return self.drop(code, body, start, max(1, (len(body) - start) // 2), headers)
        if mode == "erronce" and n == 1:
            return self.send(503, b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}')
        if mode == "long":
            return self.send(200, body + b"x" * 100, ctype="application/octet-stream")
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body[start:])


def main():
    # a parent that runs on a thread with signals blocked passes the mask on: take SIGTERM and SIGINT back
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--blobs", required=True)
    args = p.parse_args()
    serve(Handler, args.port, args.port_file, {"lock": threading.Lock(), "requests": [], "seen": {}, "blobs": args.blobs})


if __name__ == "__main__":
    main()
