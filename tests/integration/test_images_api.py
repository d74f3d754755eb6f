"""GET /v1/images and DELETE /v1/images/{name} (API.md "Images"), against a daemon whose image
is its own (imported from a tarball of the shared busybox rootfs, so deleting it touches no
shared cache): the list shows name, digest, size and time; a tenant lists but cannot delete;
an image a sandbox uses is 409; an unknown one 404; afterwards it is gone from the list, from
disk and from creates."""
import os
import subprocess
import tarfile

from warren_harness import WARREN, Daemon, create_sandbox, destroy_sandbox, shared_images


def test_list_and_delete_images(tmp_path):
    shared = shared_images(("busybox:latest",))
    tar = str(tmp_path / "box.tar")
    with tarfile.open(tar, "w") as t:
        t.add(os.path.join(shared, "busybox", "latest", "rootfs"), arcname=".")
    d = Daemon().start()
    try:
        r = subprocess.run([WARREN, "image", "import", tar, "--tag", "127.0.0.1:5000/acme/box:v1",
                            "--data-dir", d.data_dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert r.returncode == 0, r.stdout
        s, body, _ = d.request("GET", "/v1/images")
        assert s == 200, body
        img = [i for i in body["images"] if i["name"] == "127.0.0.1:5000/acme/box:v1"]
        assert len(img) == 1, body
        assert img[0]["size_bytes"] > 100_000 and img[0]["created_at"]
        assert img[0]["digest"].startswith("sha256:") or img[0]["digest"] == ""

        s, key, _ = d.request("POST", "/v1/admin/keys", {"tenant": "acme"})
        assert s == 201
        s, body, _ = d.request("GET", "/v1/images", key=key["key"])
        assert s == 200 and any(i["name"] == "127.0.0.1:5000/acme/box:v1" for i in body["images"])
        s, body, _ = d.request("DELETE", "/v1/images/127.0.0.1:5000/acme/box:v1", key=key["key"])
        assert s == 403, body

        sb = create_sandbox(d, image="127.0.0.1:5000/acme/box:v1")
        s, body, _ = d.request("DELETE", "/v1/images/127.0.0.1:5000/acme/box:v1")
        assert s == 409 and body["error"]["code"] == "conflict" and sb["id"] in body["error"]["message"], body
        destroy_sandbox(d, sb["id"])

        s, body, _ = d.request("DELETE", "/v1/images/127.0.0.1:5000/acme/box:v1")
        assert s == 204, body
        s, body, _ = d.request("DELETE", "/v1/images/127.0.0.1:5000/acme/box:v1")
        assert s == 404 and body["error"]["code"] == "not_found", body
        s, body, _ = d.request("DELETE", "/v1/images/Not%20A%20Ref")
        assert s in (400, 404), body
        s, body, _ = d.request("GET", "/v1/images")
        assert not any(i["name"] == "127.0.0.1:5000/acme/box:v1" for i in body["images"]), body
        assert not os.path.exists(os.path.join(d.data_dir, "images", "127.0.0.1:5000", "acme", "box"))
        s, body, _ = d.request("POST", "/v1/sandboxes", {"image": "127.0.0.1:5000/acme/box:v1"})
        assert s == 404, body
    finally:
        d.close()
