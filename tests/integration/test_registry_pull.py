"""`warren image pull` (issue 16, images from registries) against a real registry: Debian's
`docker-registry` (the CNCF distribution registry) started here on loopback, images pushed to it
with Debian's `skopeo` from OCI layouts this test builds — a multi-arch index (linux/amd64 and
linux/arm64), two layers (gzip; zstd) with a whiteout. Checks: the amd64 image is picked, the
whiteout applied, a sandbox runs from the pulled image; a second pull reuses the stored blobs; a
missing manifest; a corrupted blob, a tampered manifest and an oversized blob (wrong digests); a
registry with basic auth (htpasswd); one with token auth (a token server run here, JWTs signed
RS256 with a certificate the registry trusts), anonymous and with credentials; one serving TLS
with a test CA (pulled with registries.json's ca_file, refused without it); and one that dies
mid-blob (through a proxy that cuts the connection), then comes back: the next pull resumes the
.part and verifies the digest. Every failure leaves no image, no staging directory, no held
lock and no .part but a resumable one."""
import base64
import crypt  # noqa: deprecated in 3.13; Debian 12 has 3.11 (bcrypt for the registry's htpasswd)
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from warren_harness import WARREN, Daemon, destroy_sandbox, exec_, free_port, shared_images, tool


def openssl(*args):
    subprocess.run([tool("openssl")] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(root):
    """A test CA and a server certificate for 127.0.0.1 it signed: (ca.crt, server.crt, server.key)."""
    ca, ca_key, crt, key, csr = (os.path.join(root, n) for n in ("ca.crt", "ca.key", "server.crt", "server.key", "server.csr"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=warren test CA")
    openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    ext = os.path.join(root, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt, "-days", "2",
            "-extfile", ext)
    return ca, crt, key


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """The registry's token service (distribution's `auth: token`), in a thread of this process:
    GET /token?service=&scope=repository:NAME:ACTIONS answers a JWT signed RS256 by a self-signed
    certificate the registry trusts (its rootcertbundle), carried in the header's x5c. Like Docker
    Hub: bad credentials are a 401; anyone gets `pull` of public/*; a user with the right password
    gets what was asked; otherwise a token granting nothing."""
    service, issuer = "warren-test-registry", "warren-test-token-issuer"

    def __init__(self, root, users):
        os.makedirs(root, exist_ok=True)
        self.cert, key = os.path.join(root, "token.crt"), os.path.join(root, "token.key")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", self.cert, "-days", "2",
                "-subj", "/CN=warren test token signer")
        with open(key, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), None)
        with open(self.cert, "rb") as f:
            from cryptography import x509
            self.der = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)
        self.users, self.requests = users, []  # requests: (user or None, [scopes])
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                q = parse_qs(urlparse(self.path).query)
                user, auth = None, self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if srv.users.get(user) != password:
                        srv.requests.append(("!" + user, q.get("scope", [])))
                        return self.answer(401, {"details": "incorrect username or password"})
                srv.requests.append((user, q.get("scope", [])))
                access = []
                for scope in q.get("scope", []):
                    kind, name, actions = scope.split(":")
                    granted = actions.split(",") if user else ["pull"] if name.startswith("public/") else []
                    access.append({"type": kind, "name": name, "actions": granted})
                self.answer(200, {"token": srv.token(user or "", access), "expires_in": 300})

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = "http://127.0.0.1:%d/token" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, subject, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.der).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        return signed + "." + b64url(self.key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256()))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Registry:
    def __init__(self, root, htpasswd=None, token=None, tls=None):
        os.makedirs(root, exist_ok=True)
        self.port = free_port()
        self.storage = os.path.join(root, "storage")
        cfg = os.path.join(root, "config.yml")
        auth = ""
        if htpasswd:
            path = os.path.join(root, "htpasswd")
            with open(path, "w") as f:
                f.write("%s:%s\n" % (htpasswd[0], crypt.crypt(htpasswd[1], crypt.mksalt(crypt.METHOD_BLOWFISH))))
            auth = "auth:\n  htpasswd:\n    realm: test\n    path: %s\n" % path
        if token:
            auth = ("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n"
                    % (token.realm, token.service, token.issuer, token.cert))
        http = "http:\n  addr: 127.0.0.1:%d\n" % self.port
        if tls:  # (certificate, key)
            http += "  tls:\n    certificate: %s\n    key: %s\n" % tls
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
                    "  delete:\n    enabled: true\n%s%s" % (self.storage, http, auth))
        self.proc = subprocess.Popen([tool("docker-registry"), "serve", cfg], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(root, "registry.log"), "w"))
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not start")

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def blob(layout, data, media):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return {"mediaType": media, "digest": "sha256:" + d, "size": len(data)}


def tar_bytes(add):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        add(t)
    return buf.getvalue()


def file_entry(t, name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = len(data), mode
    t.addfile(ti, io.BytesIO(data))


def build_layout(layout, rootfs):
    """An OCI layout whose tag `v1` is an index of an amd64 and an arm64 image."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    base = tar_bytes(lambda t: t.add(rootfs, arcname="."))
    top = tar_bytes(lambda t: (file_entry(t, "hello.txt", b"hello from the registry\n"),
                               file_entry(t, "etc/.wh.os-release", b"")))
    z = subprocess.run([tool("zstd"), "-q", "-c"], input=top, stdout=subprocess.PIPE, check=True).stdout
    layers = [blob(layout, gzip.compress(base), "application/vnd.oci.image.layer.v1.tar+gzip"),
              blob(layout, z, "application/vnd.oci.image.layer.v1.tar+zstd")]
    manifests = []
    for arch in ("amd64", "arm64"):
        cfg = {"architecture": arch, "os": "linux", "config": {"Env": ["ARCH=" + arch]},
               "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in (base, top)]}}
        c = blob(layout, json.dumps(cfg).encode(), "application/vnd.oci.image.config.v1+json")
        m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c,
             "layers": layers if arch == "amd64" else layers[:1]}
        e = blob(layout, json.dumps(m).encode(), "application/vnd.oci.image.manifest.v1+json")
        e["platform"] = {"architecture": arch, "os": "linux"}
        manifests.append(e)
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    tag_layout(layout, blob(layout, json.dumps(idx).encode(), "application/vnd.oci.image.index.v1+json"))
    return [l["digest"] for l in layers]


def tag_layout(layout, top):
    """Makes the descriptor `top` (an index or a manifest) the layout's tag `v1`."""
    top["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [top]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def build_big_layout(layout):
    """An OCI layout whose tag `v1` is one image (no index) of one 4 MiB incompressible layer."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    data = tar_bytes(lambda t: file_entry(t, "big.bin", os.urandom(4 << 20)))
    layer = blob(layout, gzip.compress(data, 1), "application/vnd.oci.image.layer.v1.tar+gzip")
    cfg = {"architecture": "amd64", "os": "linux",
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest()]}}
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [layer],
         "config": blob(layout, json.dumps(cfg).encode(), "application/vnd.oci.image.config.v1+json")}
    tag_layout(layout, blob(layout, json.dumps(m).encode(), "application/vnd.oci.image.manifest.v1+json"))
    return layer


class CuttingProxy:
    """A TCP proxy on loopback in front of a registry, in threads of this process. While `cut` is
    set, a connection whose request asks for blob `cut[0]` is closed after `cut[1]` bytes of the
    response (the registry dying mid-blob); `down()` stops listening (the registry gone), `up()`
    listens again on the same port. `sent[blob]` counts the response bytes relayed per blob."""

    def __init__(self, upstream_port):
        self.upstream, self.port, self.cut, self.sent = upstream_port, free_port(), None, {}
        self.listener = None
        self.up()

    def up(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def down(self):
        self.listener.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        upstream = socket.create_connection(("127.0.0.1", self.upstream))
        try:
            first = client.recv(65536)
            while first and first[:1] != b"\x16" and b"\r\n\r\n" not in first:  # a whole request head (TLS: as is)
                more = client.recv(65536)
                if not more:
                    break
                first += more
            m = re.search(rb"/blobs/(sha256:[0-9a-f]{64})", first)
            name = m.group(1).decode() if m else None
            limit = self.cut[1] if self.cut and name == self.cut[0] else None
            upstream.sendall(first)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            relayed = 0
            while limit is None or relayed < limit:
                data = upstream.recv(65536 if limit is None else min(65536, limit - relayed))
                if not data:
                    break
                client.sendall(data)
                relayed += len(data)
                if name:
                    self.sent[name] = self.sent.get(name, 0) + len(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass


def push(layout, dest, creds=None):
    args = [tool("skopeo"), "copy", "--all", "--dest-tls-verify=false", "oci:%s:v1" % layout, "docker://" + dest]
    if creds:
        args[2:2] = ["--dest-creds", "%s:%s" % creds]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout.decode()


def pull(data_dir, ref):
    r = subprocess.run([WARREN, "image", "pull", ref, "--data-dir", data_dir], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=600)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def write_registries(data_dir, conf):
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "registries.json"), "w") as f:
        json.dump(conf, f)


def stored_blob(reg, digest):
    hexd = digest[7:]
    return os.path.join(reg.storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")


def assert_no_trace(data_dir, ref=None, part=None):
    """After a failed pull of `ref`: no image, no staging directory, the blob lock free, and no
    .part file but `part` (a resumable download)."""
    r = subprocess.run([WARREN, "image", "ls", "--json", "--data-dir", data_dir], stdout=subprocess.PIPE, check=True)
    assert not ref or ref not in json.loads(r.stdout)["images"]
    images = os.path.join(data_dir, "images")
    if not os.path.isdir(images):
        return
    assert not [n for n in os.listdir(images) if n.startswith((".install-", ".import-"))], os.listdir(images)
    blobs = os.path.join(images, ".blobs", "sha256")
    parts = sorted(n for n in os.listdir(blobs) if n.endswith(".part")) if os.path.isdir(blobs) else []
    assert parts == ([part[7:] + ".part"] if part else []), parts
    if os.path.exists(os.path.join(blobs, ".lock")):
        with open(os.path.join(blobs, ".lock")) as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises when a pull still holds it


@pytest.fixture(scope="module")
def d():
    """One daemon for the module (auto_pull on); pulls go into its data dir."""
    dm = Daemon(extra_args=["--images.auto_pull"]).start()
    yield dm
    dm.close()


@pytest.fixture
def layout(tmp_path):
    rootfs = os.path.join(shared_images(("busybox:latest",)), "busybox", "latest", "rootfs")
    path = str(tmp_path / "layout")
    digests = build_layout(path, rootfs)
    return path, digests


def listed(d, ref):
    s, imgs, _ = d.request("GET", "/v1/images")
    assert s == 200, imgs
    mine = [i for i in imgs["images"] if i["name"] == ref]
    assert len(mine) == 1, imgs
    return mine[0]


def test_pull_multi_arch_with_whiteout_and_run_it(tmp_path, layout, d):
    path, digests = layout
    reg = Registry(str(tmp_path))
    try:
        ref = "127.0.0.1:%d/test/app:v1" % reg.port
        push(path, ref)
        rc, out, err = pull(d.data_dir, ref)
        assert rc == 0, err
        assert out.strip() == ref
        assert "linux/amd64" in err and "layer 2/2" in err, err
        s, sb, _ = d.request("POST", "/v1/sandboxes", {"image": ref})
        assert s == 201, sb
        r = exec_(d, sb["id"], "cat /hello.txt; test -e /etc/os-release && echo present || echo gone; busybox true && echo runs")
        assert r["stdout"] == "hello from the registry\ngone\nruns\n", r
        destroy_sandbox(d, sb["id"])
        img = listed(d, ref)  # the amd64 manifest's digest, as the pull said
        assert "pulled %s (%s)" % (ref, img["digest"]) in err and img["size_bytes"] > 500000, (img, err)
        for dg in digests:  # layers stored once by digest
            assert os.path.exists(os.path.join(d.data_dir, "images", ".blobs", "sha256", dg[7:]))
        # The same layers under another tag: nothing downloaded again.
        push(path, "127.0.0.1:%d/test/app:again" % reg.port)
        rc, out, err = pull(d.data_dir, "127.0.0.1:%d/test/app:again" % reg.port)
        assert rc == 0 and err.count("already here") == 2, err
        # A tag that does not exist.
        rc, out, err = pull(d.data_dir, "127.0.0.1:%d/test/app:nope" % reg.port)
        assert rc == 1 and "no manifest nope" in err, err
        assert_no_trace(d.data_dir, "127.0.0.1:%d/test/app:nope" % reg.port)
        # Over the API (admin): JSON, and progress as SSE.
        push(path, "127.0.0.1:%d/test/api:v1" % reg.port)
        s, img, _ = d.request("POST", "/v1/images/pull", {"ref": "127.0.0.1:%d/test/api:v1" % reg.port})
        assert s == 200 and img["name"] == "127.0.0.1:%d/test/api:v1" % reg.port and img["size_bytes"] > 0, img
        assert img["digest"].startswith("sha256:"), img
        s, k, _ = d.request("POST", "/v1/admin/keys", {"tenant": "t"})
        s, body, _ = d.request("POST", "/v1/images/pull", {"ref": ref}, key=k["key"])
        assert s == 403, body
        s, body, _ = d.request("POST", "/v1/images/pull", {"ref": "127.0.0.1:%d/test/app:nope" % reg.port})
        assert s == 404 and body["error"]["code"] == "not_found", body
        push(path, "127.0.0.1:%d/test/sse:v1" % reg.port)
        s, text, _ = d.request("POST", "/v1/images/pull", {"ref": "127.0.0.1:%d/test/sse:v1" % reg.port},
                               headers={"Accept": "text/event-stream"}, raw=True)
        text = text.decode() if isinstance(text, bytes) else text
        assert s == 200 and "event: progress" in text and "event: image" in text, text
    finally:
        reg.close()


def test_wrong_digests_leave_no_image(tmp_path, layout):
    """A corrupted layer (same size), a layer replaced by a bigger blob, and a tampered manifest:
    each a clear error, no image, no .part."""
    path, digests = layout
    reg = Registry(str(tmp_path / "r"))
    data = str(tmp_path / "data")
    try:
        ref = "127.0.0.1:%d/test/bad:v1" % reg.port
        push(path, ref)
        with open(stored_blob(reg, digests[1]), "r+b") as f:
            f.seek(10)
            f.write(b"\x00corrupted\x00")
        rc, out, err = pull(data, ref)
        assert rc == 1 and "blob %s does not match its digest" % digests[1] in err, err
        assert_no_trace(data, ref)
        assert not os.path.exists(os.path.join(data, "images", ".blobs", "sha256", digests[1][7:]))
        # The layer's content is another, larger blob: stopped at the manifest's size.
        with open(stored_blob(reg, digests[1]), "wb") as f, open(stored_blob(reg, digests[0]), "rb") as other:
            f.write(other.read())
        rc, out, err = pull(data, ref)
        assert rc == 1 and "blob %s is larger than" % digests[1] in err, err
        assert_no_trace(data, ref)
        # The amd64 manifest the index names by digest, served with other bytes (still JSON).
        ref2 = "127.0.0.1:%d/test/tampered:v1" % reg.port
        push(path, ref2)
        with open(os.path.join(path, "index.json")) as f:
            index_digest = json.load(f)["manifests"][0]["digest"]
        with open(os.path.join(path, "blobs", "sha256", index_digest[7:])) as f:
            amd64 = [m["digest"] for m in json.load(f)["manifests"] if m["platform"]["architecture"] == "amd64"][0]
        with open(stored_blob(reg, amd64), "ab") as f:
            f.write(b" ")
        rc, out, err = pull(data, ref2)
        assert rc == 1 and "manifest %s has digest sha256:" % amd64 in err and "tampered" in err, err
        assert_no_trace(data, ref2)
    finally:
        reg.close()


def test_basic_auth_registry(tmp_path, layout):
    path, _ = layout
    reg = Registry(str(tmp_path / "r"), htpasswd=("alice", "s3cret"))
    data = str(tmp_path / "data")
    os.makedirs(data)
    try:
        ref = "127.0.0.1:%d/private/app:v1" % reg.port
        push(path, ref, creds=("alice", "s3cret"))
        rc, out, err = pull(data, ref)
        assert rc == 1 and "needs credentials" in err, err
        write_registries(data, {"credentials": {"127.0.0.1:%d" % reg.port: {"username": "alice", "password": "wrong"}}})
        rc, out, err = pull(data, ref)
        assert rc == 1 and "refused" in err, err
        assert_no_trace(data, ref)
        write_registries(data, {"credentials": {"127.0.0.1:%d" % reg.port: {"username": "alice", "password": "s3cret"}}})
        rc, out, err = pull(data, ref)
        assert rc == 0, err
    finally:
        reg.close()


def test_token_auth_registry(tmp_path, layout):
    path, _ = layout
    tokens = TokenServer(str(tmp_path / "t"), {"alice": "s3cret"})
    reg = Registry(str(tmp_path / "r"), token=tokens)
    data = str(tmp_path / "data")
    host = "127.0.0.1:%d" % reg.port
    try:
        public, private = host + "/public/app:v1", host + "/private/app:v1"
        push(path, public, creds=("alice", "s3cret"))
        push(path, private, creds=("alice", "s3cret"))
        # Anonymous: a token for public/*.
        del tokens.requests[:]
        rc, out, err = pull(data, public)
        assert rc == 0 and out.strip() == public, err
        assert (None, ["repository:public/app:pull"]) in tokens.requests, tokens.requests
        # Anonymous, private: the token grants nothing, the registry refuses.
        rc, out, err = pull(data, private)
        assert rc == 1 and "refused" in err and "no credentials for %s" % host in err, err
        assert_no_trace(data, private)
        # Wrong password: the token server refuses.
        write_registries(data, {"credentials": {host: {"username": "alice", "password": "wrong"}}})
        rc, out, err = pull(data, private)
        assert rc == 1 and "refused a pull token for private/app" in err, err
        assert ("!alice", ["repository:private/app:pull"]) in tokens.requests, tokens.requests
        assert_no_trace(data, private)
        # The right one: pulled with alice's token.
        write_registries(data, {"credentials": {host: {"username": "alice", "password": "s3cret"}}})
        rc, out, err = pull(data, private)
        assert rc == 0 and out.strip() == private, err
        assert ("alice", ["repository:private/app:pull"]) in tokens.requests, tokens.requests
    finally:
        reg.close()
        tokens.close()


def test_tls_registry(tmp_path, layout):
    path, _ = layout
    ca, crt, key = make_ca(str(tmp_path))
    reg = Registry(str(tmp_path / "r"), tls=(crt, key))
    data = str(tmp_path / "data")
    ref = "127.0.0.1:%d/secure/app:v1" % reg.port
    try:
        push(path, ref)
        rc, out, err = pull(data, ref)  # the host's CAs do not know the test CA
        assert rc == 1 and "TLS certificate not trusted" in err and "ca_file" in err, err
        assert_no_trace(data, ref)
        write_registries(data, {"ca_file": ca})
        rc, out, err = pull(data, ref)
        assert rc == 0 and out.strip() == ref, err
        assert "from https://127.0.0.1:%d/" % reg.port in err, err
    finally:
        reg.close()


def test_registry_dies_mid_pull_then_resumes(tmp_path, d):
    path = str(tmp_path / "layout")
    layer = build_big_layout(path)
    reg = Registry(str(tmp_path / "r"))
    proxy = CuttingProxy(reg.port)
    ref = "127.0.0.1:%d/test/big:v1" % proxy.port
    try:
        push(path, "127.0.0.1:%d/test/big:v1" % reg.port)
        proxy.cut = (layer["digest"], 1 << 20)  # the registry dies after 1 MiB of the layer
        rc, out, err = pull(d.data_dir, ref)
        assert rc == 1 and "download interrupted after" in err and "the next pull resumes it" in err, err
        part = os.path.join(d.data_dir, "images", ".blobs", "sha256", layer["digest"][7:] + ".part")
        got = os.path.getsize(part)
        assert 0 < got < layer["size"], got
        assert_no_trace(d.data_dir, ref, part=layer["digest"])
        # Gone altogether: the pull (here over the API) fails, the .part is kept as it was.
        proxy.cut = None
        proxy.down()
        s, body, _ = d.request("POST", "/v1/images/pull", {"ref": ref})
        assert s == 502 and body["error"]["code"] == "bad_gateway", body
        assert os.path.getsize(part) == got
        assert_no_trace(d.data_dir, ref, part=layer["digest"])
        # Back: the next pull resumes where the first stopped, fetches only the rest, checks the digest.
        proxy.up()
        proxy.sent.clear()
        rc, out, err = pull(d.data_dir, ref)
        assert rc == 0, err
        assert "resuming at %d bytes (%d bytes)" % (got, layer["size"]) in err, err
        assert proxy.sent[layer["digest"]] < layer["size"] - got + 4096, (proxy.sent, got)
        stored = os.path.join(d.data_dir, "images", ".blobs", "sha256", layer["digest"][7:])
        with open(stored, "rb") as f:
            assert "sha256:" + hashlib.sha256(f.read()).hexdigest() == layer["digest"]
        assert_no_trace(d.data_dir)
        img = listed(d, ref)
        assert img["digest"].startswith("sha256:") and img["digest"] in err and img["size_bytes"] >= 4 << 20, img
    finally:
        proxy.down()
        reg.close()


def test_auto_pull_on_create(tmp_path, layout, d):
    path, _ = layout
    reg = Registry(str(tmp_path / "r"))
    try:
        ref = "127.0.0.1:%d/test/auto:v1" % reg.port
        push(path, ref)
        s, sb, h = d.request("POST", "/v1/sandboxes", {"image": ref})
        assert s == 201, sb
        timing = {k.lower(): v for k, v in h.items()}.get("server-timing", "")
        assert timing.startswith("pull;dur="), h
        assert exec_(d, sb["id"], "cat /hello.txt")["stdout"] == "hello from the registry\n"
        s, sb2, h = d.request("POST", "/v1/sandboxes", {"image": ref})
        assert s == 201 and "server-timing" not in {k.lower() for k in h}, h
        s, body, _ = d.request("POST", "/v1/sandboxes", {"image": "127.0.0.1:%d/test/auto:nope" % reg.port})
        assert s == 404 and "no manifest" in body["error"]["message"], body
        for x in (sb, sb2):
            destroy_sandbox(d, x["id"])
    finally:
        reg.close()
