#!/usr/bin/env python3
"""An independent SigV4 check for the tests: a small HTTP reverse proxy that recomputes every
request's signature with botocore and answers 403 (in Amazon's words) when it does not match,
forwarding valid requests to a real search server.

    sigv4-verify-proxy.py --upstream http://127.0.0.1:9200 --region eu-west-1 --service es \
        --credentials-file creds.json        # {"accessKeyId": …, "secretAccessKey": …, "sessionToken"?: …}

Prints `listening http://127.0.0.1:PORT` once ready, then one line per request:
`OK METHOD PATH` or `DENY METHOD PATH: reason`. For `--service aoss` the payload hash header
`x-amz-content-sha256` is required and checked against the body, and `GET /` is refused (as
OpenSearch Serverless has no such API).
"""

import argparse
import hashlib
import hmac
import http.client
import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?Signature=(?P<sig>[0-9a-f]{64})$"
)
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-authorization",
       "proxy-connection", "content-length", "host", "accept-encoding"}

LOCK = threading.Lock()


def log(line):
    with LOCK:
        print(line, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cfg = None  # set in main

    def log_message(self, *args):  # silence the default access log
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, content_type="application/json", head=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _deny(self, reason, head=False):
        log(f"DENY {self.command} {self.path}: {reason}")
        body = json.dumps({"message": "The request signature we calculated does not match the "
                           "signature you provided. Check your AWS Secret Access Key and signing "
                           "method. Consult the service documentation for details.",
                           "detail": reason}).encode()
        self._send(403, body, head=head)

    def verify(self, body):
        cfg = self.cfg
        auth = self.headers.get("Authorization", "")
        m = AUTH_RE.match(auth)
        if not m:
            return "missing or malformed Authorization header"
        if m["akid"] != cfg.creds["accessKeyId"]:
            return f"unknown access key {m['akid']}"
        if m["region"] != cfg.region or m["service"] != cfg.service:
            return f"wrong scope {m['region']}/{m['service']} (expected {cfg.region}/{cfg.service})"
        amz_date = self.headers.get("X-Amz-Date", "")
        if not amz_date.startswith(m["date"]):
            return "X-Amz-Date does not match the credential scope date"
        token = cfg.creds.get("sessionToken")
        if token is not None and self.headers.get("X-Amz-Security-Token") != token:
            return "missing or wrong X-Amz-Security-Token"
        signed = m["signed"].split(";")
        if "host" not in signed:
            return "host is not signed"
        if token is not None and "x-amz-security-token" not in signed:
            return "the session token is not signed"
        if cfg.service == "aoss":
            sent = self.headers.get("X-Amz-Content-SHA256")
            if sent is None:
                return "aoss requires x-amz-content-sha256"
            if sent != hashlib.sha256(body).hexdigest():
                return "x-amz-content-sha256 does not match the body"
            if "x-amz-content-sha256" not in signed:
                return "x-amz-content-sha256 is not signed"
        headers = {}
        for name in signed:
            if name not in self.headers:
                return f"signed header {name} is missing"
            headers[name] = ", ".join(self.headers.get_all(name))
        # The path exactly as received (still percent-encoded); botocore encodes it once more,
        # as SigV4 for non-S3 services requires.
        url = f"http://{self.headers['Host']}{self.path}"
        req = AWSRequest(method=self.command, url=url, data=body, headers=headers)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(
            Credentials(cfg.creds["accessKeyId"], cfg.creds["secretAccessKey"], token),
            cfg.service, cfg.region)
        if signer.signed_headers(signer.headers_to_sign(req)) != m["signed"]:
            return "SignedHeaders differ from the headers botocore would sign"
        canonical = signer.canonical_request(req)
        expected = signer.signature(signer.string_to_sign(req, canonical), req)
        if not hmac.compare_digest(expected, m["sig"]):
            return "signature mismatch"
        return None

    def handle_any(self):
        head = self.command == "HEAD"
        body = self._body()
        why = self.verify(body)
        if why:
            return self._deny(why, head)
        if self.cfg.service == "aoss" and self.command == "GET" and urllib.parse.urlsplit(self.path).path == "/":
            log(f"DENY {self.command} {self.path}: aoss has no GET /")
            return self._send(404, b'{"error":"no GET / on OpenSearch Serverless"}', head=head)
        log(f"OK {self.command} {self.path}")
        up = urllib.parse.urlsplit(self.cfg.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        fwd = {k: v for k, v in self.headers.items()
               if k.lower() not in HOP and k.lower() != "authorization" and not k.lower().startswith("x-amz-")}
        fwd["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body if body else None, headers=fwd)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self._send(resp.status, data, resp.getheader("Content-Type", "application/json"), head)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--service", required=True, choices=["es", "aoss"])
    ap.add_argument("--credentials-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    with open(args.credentials_file) as f:
        args.creds = json.load(f)
    Handler.cfg = args
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    log(f"listening http://127.0.0.1:{server.server_address[1]}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
