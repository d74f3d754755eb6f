"""The server the port-proxy tests run inside a sandbox (stdlib only: the debian image has
python3 and nothing else). Echoes what it received, streams, sets cookies, speaks WebSocket.
Usage: python3 port_proxy_app.py PORT"""
import base64
import hashlib
import http.server
import json
import socket
import socketserver
import struct
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the proxy's pool has something to reuse

    def log_message(self, *a):
        pass

    def read_body(self):
        h = hashlib.sha256()
        n = 0
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    b = self.rfile.read(min(left, 1 << 20))
                    h.update(b)
                    n += len(b)
                    left -= len(b)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                b = self.rfile.read(min(left, 1 << 20))
                if not b:
                    break
                h.update(b)
                n += len(b)
                left -= len(b)
        return n, h.hexdigest()

    def send_json(self, obj, status=200, extra=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_one(self):
        path = self.path
        if path.startswith("/ws") and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if path.startswith("/sse"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for i in range(4):
                self.wfile.write(("event: tick\ndata: %d %f\n\n" % (i, time.time())).encode())
                self.wfile.flush()
                time.sleep(0.5)
            self.close_connection = True
            return
        if path.startswith("/big"):
            n = int(path.split("=")[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"x" * 65536
            while n:
                b = block[:min(n, len(block))]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
                n -= len(b)
            self.wfile.write(b"0\r\n\r\n")
            return
        if path.startswith("/slow"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(120):
                self.wfile.write(b"5\r\ntick\n\r\n")
                self.wfile.flush()
                time.sleep(0.5)
            self.wfile.write(b"0\r\n\r\n")
            return
        n, digest = self.read_body()
        extra = []
        if path.startswith("/cookie"):
            extra = [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/; HttpOnly")]
        if path.startswith("/hop"):
            extra = [("Connection", "X-Hop-Secret"), ("X-Hop-Secret", "1"), ("Keep-Alive", "timeout=5"),
                     ("X-Kept", "yes")]
        self.send_json({"method": self.command, "path": path, "headers": list(self.headers.items()),
                        "body_len": n, "body_sha256": digest, "peer_port": self.client_address[1],
                        "peer_host": self.client_address[0]},
                       extra=extra)

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        rf, wf = self.rfile, self.wfile
        while True:
            hdr = rf.read(2)
            if len(hdr) < 2:
                break
            op = hdr[0] & 0x0F
            ln = hdr[1] & 0x7F
            if ln == 126:
                ln = struct.unpack(">H", rf.read(2))[0]
            elif ln == 127:
                ln = struct.unpack(">Q", rf.read(8))[0]
            mask = rf.read(4) if hdr[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(rf.read(ln)))
            if op == 8:
                wf.write(b"\x88\x00")
                wf.flush()
                break
            if op in (1, 2):
                out = bytes([0x80 | op])
                if len(data) < 126:
                    out += bytes([len(data)])
                elif len(data) < 65536:
                    out += bytes([126]) + struct.pack(">H", len(data))
                else:
                    out += bytes([127]) + struct.pack(">Q", len(data))
                wf.write(out + data)
                wf.flush()
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_BREW = handle_one


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    if ":" in host:  # "::1": a server on IPv6 loopback only, as Node's "localhost" often is
        Server.address_family = socket.AF_INET6
    Server((host, int(sys.argv[1])), Handler).serve_forever()
