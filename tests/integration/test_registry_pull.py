"""`warren image pull` (issue 16, images from registries) against a real registry: Debian's
`docker-registry` (the CNCF distribution registry) started here on loopback, images pushed to it
with Debian's `skopeo` from an OCI layout this test builds — a multi-arch index (linux/amd64 and
linux/arm64), two layers (gzip; zstd) with a whiteout. Checks: the amd64 image is picked, the
whiteout applied, a sandbox runs from the pulled image; a second pull reuses the stored blobs; a
missing manifest, a corrupted blob (no half image, no .part left), and a registry with basic auth
(refused without credentials, pulled with registries.json) each end as they should."""
import crypt  # noqa: deprecated in 3.13; Debian 12 has 3.11 (bcrypt for the registry's htpasswd)
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time

import pytest

from warren_harness import WARREN, Daemon, destroy_sandbox, exec_, free_port, shared_images, tool


class Registry:
    def __init__(self, root, htpasswd=None):
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
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
                    "  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%d\n%s" % (self.storage, self.port, auth))
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
    ie = blob(layout, json.dumps(idx).encode(), "application/vnd.oci.image.index.v1+json")
    ie["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [ie]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return [l["digest"] for l in layers]


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


@pytest.fixture
def layout(tmp_path):
    rootfs = os.path.join(shared_images(("busybox:latest",)), "busybox", "latest", "rootfs")
    path = str(tmp_path / "layout")
    digests = build_layout(path, rootfs)
    return path, digests


def test_pull_multi_arch_with_whiteout_and_run_it(tmp_path, layout):
    path, digests = layout
    reg = Registry(str(tmp_path))
    d = Daemon().start()
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
        s, imgs, _ = d.request("GET", "/v1/images")
        mine = [i for i in imgs["images"] if i["name"] == ref]
        assert mine and mine[0]["digest"].startswith("sha256:"), imgs
        for dg in digests:  # layers stored once by digest
            assert os.path.exists(os.path.join(d.data_dir, "images", ".blobs", "sha256", dg[7:]))
        # The same layers under another tag: nothing downloaded again.
        push(path, "127.0.0.1:%d/test/app:again" % reg.port)
        rc, out, err = pull(d.data_dir, "127.0.0.1:%d/test/app:again" % reg.port)
        assert rc == 0 and err.count("already here") == 2, err
        # A tag that does not exist.
        rc, out, err = pull(d.data_dir, "127.0.0.1:%d/test/app:nope" % reg.port)
        assert rc == 1 and "no manifest nope" in err, err
        # Over the API (admin): JSON, and progress as SSE.
        push(path, "127.0.0.1:%d/test/api:v1" % reg.port)
        s, img, _ = d.request("POST", "/v1/images/pull", {"ref": "127.0.0.1:%d/test/api:v1" % reg.port})
        assert s == 200 and img["name"] == "127.0.0.1:%d/test/api:v1" % reg.port and img["size_bytes"] > 0, img
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
        d.close()
        reg.close()


def test_corrupt_blob_leaves_no_image(tmp_path, layout):
    path, digests = layout
    reg = Registry(str(tmp_path / "r"))
    data = str(tmp_path / "data")
    try:
        ref = "127.0.0.1:%d/test/bad:v1" % reg.port
        push(path, ref)
        hexd = digests[1][7:]
        stored = os.path.join(reg.storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")
        with open(stored, "r+b") as f:
            f.seek(10)
            f.write(b"\x00corrupted\x00")
        rc, out, err = pull(data, ref)
        assert rc == 1 and "does not match its digest" in err, err
        r = subprocess.run([WARREN, "image", "ls", "--data-dir", data], stdout=subprocess.PIPE)
        assert ref.encode() not in r.stdout
        blobs = os.path.join(data, "images", ".blobs", "sha256")
        assert not os.path.exists(os.path.join(blobs, hexd)) and not os.path.exists(os.path.join(blobs, hexd + ".part"))
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
        with open(os.path.join(data, "registries.json"), "w") as f:
            json.dump({"credentials": {"127.0.0.1:%d" % reg.port: {"username": "alice", "password": "wrong"}}}, f)
        rc, out, err = pull(data, ref)
        assert rc == 1 and "refused" in err, err
        with open(os.path.join(data, "registries.json"), "w") as f:
            json.dump({"credentials": {"127.0.0.1:%d" % reg.port: {"username": "alice", "password": "s3cret"}}}, f)
        rc, out, err = pull(data, ref)
        assert rc == 0, err
    finally:
        reg.close()


def test_auto_pull_on_create(tmp_path, layout):
    path, _ = layout
    reg = Registry(str(tmp_path / "r"))
    d = Daemon(extra_args=["--images.auto_pull"]).start()
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
        d.close()
        reg.close()
