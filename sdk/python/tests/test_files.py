"""Files through the SDK: upload/download (streamed both ways), text helpers, ls, remove."""
import asyncio
import hashlib
import os

import pytest

from warren import AsyncSandbox, FileEntry, WarrenError


def test_write_text_read_text_and_ls(sb):
    assert sb.write_text("/remote/path/hello.txt", "hi\n") == 3
    assert sb.read_text("/remote/path/hello.txt") == "hi\n"
    assert sb.exec("cat /remote/path/hello.txt").stdout == "hi\n"
    files = sb.ls("/remote/path/")
    assert [(f.name, f.path, f.type, f.size) for f in files] == \
        [("hello.txt", "/remote/path/hello.txt", "file", 3)]
    assert isinstance(files[0], FileEntry) and re_octal(files[0].mode) and not files[0].is_dir


def re_octal(s):
    return len(s) == 4 and all(c in "01234567" for c in s)


def test_write_with_a_mode_sets_the_permission_bits(sb):
    sb.write("/tmp/run.sh", b"#!/bin/sh\necho ran\n", mode=0o755)
    assert sb.exec("/tmp/run.sh").stdout == "ran\n"
    assert [f.mode for f in sb.ls("/tmp") if f.name == "run.sh"] == ["0755"]


def test_binary_content_round_trips_unchanged(sb):
    data = bytes(range(256)) * 1000
    sb.write("/tmp/bin", data)
    assert sb.download("/tmp/bin") == data


def test_upload_file_and_download_file_stream_a_large_file(sb, tmp_path):
    src = tmp_path / "big"
    with open(src, "wb") as f:
        for i in range(40):
            f.write(os.urandom(1 << 20))
    assert sb.upload_file(str(src), "/data/big") == 40 << 20
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    assert sb.exec("sha256sum /data/big").stdout.split()[0] == want
    dst = tmp_path / "back"
    assert sb.download_file("/data/big", str(dst)) == 40 << 20
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == want


def test_missing_files_and_directories_are_errors_with_the_api_code(sb):
    with pytest.raises(WarrenError) as e:
        sb.download("/no/such/file")
    assert e.value.code == 404
    with pytest.raises(WarrenError) as e:
        sb.download("/tmp")
    assert e.value.code == 400
    with pytest.raises(WarrenError) as e:
        sb.read_text("relative/path")
    assert e.value.code == 400


def test_remove_deletes_files_and_needs_recursive_for_a_full_directory(sb):
    sb.write_text("/d/a/b.txt", "x")
    sb.remove("/d/a/b.txt")
    assert sb.ls("/d/a") == []
    sb.write_text("/d/a/c.txt", "x")
    with pytest.raises(WarrenError):
        sb.remove("/d")
    sb.remove("/d", recursive=True)
    assert "d" not in [f.name for f in sb.ls("/")]


def test_async_files_mirror_the_blocking_ones(daemon, tmp_path):
    async def main():
        async with AsyncSandbox(sandbox_timeout=60) as sb:
            assert await sb.write_text("/x/y.txt", "async\n") == 6
            assert await sb.read_text("/x/y.txt") == "async\n"
            assert [f.name for f in await sb.ls("/x")] == ["y.txt"]
            src = tmp_path / "f"
            src.write_bytes(os.urandom(3 << 20))
            assert await sb.upload_file(str(src), "/x/f") == 3 << 20
            assert await sb.download_file("/x/f", str(tmp_path / "g")) == 3 << 20
            assert (tmp_path / "g").read_bytes() == src.read_bytes()
            await sb.remove("/x", recursive=True)
            with pytest.raises(WarrenError) as e:
                await sb.download("/x/y.txt")
            assert e.value.code == 404
    asyncio.run(main())
