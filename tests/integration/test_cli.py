"""The `warren` CLI's API commands (sandbox, cp, admin) driven as a user would, against a real
daemon: output formats, exec exit codes, copies both ways (100 MB), key management."""
import hashlib
import json
import os
import subprocess

import pytest

from warren_harness import WARREN, TEST_IMAGE, destroy_sandbox


def cli(daemon, *args, key="admin", input=None, timeout=120, env=None):
    """Runs `warren ARGS` with the daemon's URL and key in the environment."""
    e = dict(os.environ)
    e.pop("WARREN_API_KEY", None)
    e["WARREN_API_URL"] = "http://127.0.0.1:%d" % daemon.port
    if key:
        e["WARREN_API_KEY"] = daemon.admin_key if key == "admin" else key
    e.update(env or {})
    return subprocess.run([WARREN, *args], input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=e)


@pytest.fixture
def sid(daemon):
    r = cli(daemon, "sandbox", "create", "--sandbox-timeout", "120")
    assert r.returncode == 0, r.stderr
    sid = r.stdout.decode().strip()
    yield sid
    destroy_sandbox(daemon, sid)


# --- help -------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--help"], ["sandbox", "--help"], ["sandbox", "create", "--help"],
                                  ["sandbox", "exec", "--help"], ["sandbox", "shell", "--help"],
                                  ["cp", "--help"], ["admin", "--help"], ["admin", "keys", "--help"],
                                  ["admin", "keys", "create", "--help"]])
def test_every_level_has_help_that_exits_0(args):
    r = subprocess.run([WARREN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 0, r.stderr
    assert b"usage" in r.stdout.lower()


def test_unknown_commands_and_options_are_usage_errors_with_status_2(daemon):
    assert cli(daemon, "sandbox", "frobnicate").returncode == 2
    r = cli(daemon, "sandbox", "ls", "--bogus")
    assert r.returncode == 2 and b"unknown option --bogus" in r.stderr


# --- sandboxes --------------------------------------------------------------------------------

def test_create_prints_the_id_and_ls_json_and_the_table_list_it(daemon, sid):
    assert len(sid) == 16
    r = cli(daemon, "sandbox", "ls", "--json")
    assert r.returncode == 0
    listed = json.loads(r.stdout)["sandboxes"]
    assert sid in [s["id"] for s in listed]
    table = cli(daemon, "sandbox", "ls").stdout.decode().splitlines()
    assert table[0].split()[:3] == ["ID", "IMAGE", "STATE"]
    assert any(line.split()[:3] == [sid, TEST_IMAGE, "running"] for line in table[1:])


def test_create_json_carries_the_settings(daemon):
    r = cli(daemon, "sandbox", "create", "--json", "--mem", "128", "--vcpus", "2", "--sandbox-timeout", "60",
            "--env", "A=1", "--metadata", '{"team": "x"}')
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    try:
        assert (obj["mem_mib"], obj["vcpus"], obj["sandbox_timeout"], obj["metadata"]) == (128, 2, 60, {"team": "x"})
        assert cli(daemon, "sandbox", "exec", obj["id"], "echo $A").stdout == b"1\n"
    finally:
        destroy_sandbox(daemon, obj["id"])


def test_info_shows_one_sandbox(daemon, sid):
    r = cli(daemon, "sandbox", "info", sid, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == sid
    text = cli(daemon, "sandbox", "info", sid).stdout.decode()
    assert "state:" in text and "running" in text
    r = cli(daemon, "sandbox", "info", "0123456789abcdef")
    assert r.returncode == 1 and b"not_found" in r.stderr


def test_exec_streams_output_and_exits_with_the_commands_exit_code(daemon, sid):
    r = cli(daemon, "sandbox", "exec", sid, "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    assert cli(daemon, "sandbox", "exec", sid, "true").returncode == 0
    assert cli(daemon, "sandbox", "exec", sid, "kill -9 $$").returncode == 137


def test_exec_takes_argv_words_env_cwd_and_stdin(daemon, sid):
    r = cli(daemon, "sandbox", "exec", sid, "--cwd", "/tmp", "--env", "X=a b", "--", "sh", "-c", "pwd; echo \"$X\"")
    assert (r.returncode, r.stdout) == (0, b"/tmp\na b\n"), r.stderr
    r = cli(daemon, "sandbox", "exec", sid, "ls", "-d", "/etc")  # -d belongs to ls
    assert r.stdout == b"/etc\n", r.stderr
    r = cli(daemon, "sandbox", "exec", sid, "--stdin", "wc -c", input=b"12345")
    assert r.stdout.strip() == b"5"


def test_exec_json_prints_the_result_and_keeps_the_exit_code(daemon, sid):
    r = cli(daemon, "sandbox", "exec", sid, "--json", "echo hi; exit 5")
    assert r.returncode == 5
    out = json.loads(r.stdout)
    assert (out["stdout"], out["exit_code"]) == ("hi\n", 5)


def test_exec_past_its_timeout_exits_124(daemon, sid):
    r = cli(daemon, "sandbox", "exec", sid, "--timeout", "1", "echo started; sleep 30")
    assert r.returncode == 124 and r.stdout == b"started\n" and b"timeout" in r.stderr
    r = cli(daemon, "sandbox", "exec", sid, "--json", "--timeout", "1", "sleep 30")
    assert r.returncode == 124 and json.loads(r.stdout)["error"]["code"] == "timeout"


def test_rm_destroys_and_prints_measured_stats(daemon):
    sid = cli(daemon, "sandbox", "create").stdout.decode().strip()
    r = cli(daemon, "sandbox", "rm", sid, "--json")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["id"] == sid and stats["uptime_ms"] > 0
    r = cli(daemon, "sandbox", "rm", sid)
    assert r.returncode == 1 and b"not_found" in r.stderr
    sid = cli(daemon, "sandbox", "create").stdout.decode().strip()
    assert b"destroyed" in cli(daemon, "sandbox", "rm", sid).stdout


# --- cp ---------------------------------------------------------------------------------------

def test_cp_copies_a_small_file_both_ways(daemon, sid, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_text("hello\n")
    r = cli(daemon, "cp", str(src), sid + ":/work/")
    assert r.returncode == 0, r.stderr
    assert cli(daemon, "sandbox", "exec", sid, "cat /work/hello.txt").stdout == b"hello\n"
    out = tmp_path / "out"
    out.mkdir()
    assert cli(daemon, "cp", sid + ":/work/hello.txt", str(out)).returncode == 0
    assert (out / "hello.txt").read_text() == "hello\n"
    r = cli(daemon, "cp", sid + ":/work/hello.txt", "-")
    assert r.stdout == b"hello\n"


def test_cp_streams_a_100_mb_file_both_ways_with_progress(daemon, sid, tmp_path):
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    r = cli(daemon, "cp", "--progress", str(src), sid + ":/data/big.bin", timeout=300)
    assert r.returncode == 0, r.stderr
    assert b"100.0 MiB" in r.stderr and b"100%" in r.stderr
    assert cli(daemon, "sandbox", "exec", sid, "sha256sum /data/big.bin").stdout.split()[0].decode() == want
    back = tmp_path / "back.bin"
    r = cli(daemon, "cp", sid + ":/data/big.bin", str(back), timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""  # no progress when stderr is not a terminal
    assert hashlib.sha256(back.read_bytes()).hexdigest() == want


def test_cp_errors_leave_no_partial_file(daemon, sid, tmp_path):
    dst = tmp_path / "nothing"
    r = cli(daemon, "cp", sid + ":/no/such/file", str(dst))
    assert r.returncode == 1 and b"not_found" in r.stderr
    assert os.listdir(tmp_path) == []
    r = cli(daemon, "cp", str(tmp_path / "missing"), sid + ":/x")
    assert r.returncode == 1
    r = cli(daemon, "cp", "a", "b")
    assert r.returncode == 2


# --- admin keys and config --------------------------------------------------------------------

def test_admin_keys_create_and_rm(daemon, sid):
    r = cli(daemon, "admin", "keys", "create", "--tenant", "clitenant", "--json")
    assert r.returncode == 0, r.stderr
    k = json.loads(r.stdout)
    assert k["tenant"] == "clitenant" and k["key"].startswith("wrn_live_") and k["admin"] is False
    # the tenant key works and sees only its own sandboxes
    r = cli(daemon, "sandbox", "ls", "--json", key=k["key"])
    assert r.returncode == 0 and json.loads(r.stdout)["sandboxes"] == []
    assert cli(daemon, "sandbox", "info", sid, key=k["key"]).returncode == 1
    # a tenant key cannot mint keys
    r = cli(daemon, "admin", "keys", "create", "--tenant", "x", key=k["key"])
    assert r.returncode == 1 and b"forbidden" in r.stderr
    assert cli(daemon, "admin", "keys", "rm", k["key_id"]).returncode == 0
    r = cli(daemon, "sandbox", "ls", key=k["key"])
    assert r.returncode == 1 and b"unauthorized" in r.stderr
    # human output: the key alone on stdout
    r = cli(daemon, "admin", "keys", "create", "--tenant", "plain")
    assert r.stdout.decode().strip().startswith("wrn_live_") and b"not shown again" in r.stderr


def test_flags_override_env_and_the_local_key_file_is_the_default(daemon):
    url = "http://127.0.0.1:%d" % daemon.port
    r = cli(daemon, "sandbox", "ls", "--api-url", url, "--api-key", daemon.admin_key, key=None,
            env={"WARREN_API_URL": "http://127.0.0.1:1"})
    assert r.returncode == 0, r.stderr
    r = cli(daemon, "sandbox", "ls", key=None, env={"WARREN_DATA_DIR": daemon.data_dir})
    assert r.returncode == 0, r.stderr
    r = cli(daemon, "sandbox", "ls", key=None, env={"WARREN_API_URL": "http://127.0.0.1:1"})
    assert r.returncode == 1 and b"cannot connect" in r.stderr


# --- public URLs ------------------------------------------------------------------------------

def test_url_and_expose(daemon, sid):
    r = cli(daemon, "sandbox", "url", sid, "8000")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip().endswith("/sb/p/8000/") and sid in r.stdout.decode()
    r = cli(daemon, "sandbox", "expose", sid, "8000", "--json")
    assert r.returncode == 0, r.stderr
    exp = json.loads(r.stdout)
    assert exp["port"] == 8000 and exp["token"]
    r = cli(daemon, "sandbox", "expose", sid, "8000")
    assert b"token:" in r.stdout and b"browser_url:" in r.stdout
    status, body, _ = daemon.request("GET", "/v1/sandboxes/%s/exposures" % sid)
    assert [e["port"] for e in body["exposures"]] == [8000]
    assert cli(daemon, "sandbox", "expose", sid, "8000", "--rm").returncode == 0
    status, body, _ = daemon.request("GET", "/v1/sandboxes/%s/exposures" % sid)
    assert body["exposures"] == []
    assert cli(daemon, "sandbox", "url", sid, "http").returncode == 2


# --- interactive terminal ---------------------------------------------------------------------

def run_in_pty(daemon, args, script, cols=100, rows=30, resize=None, timeout=30):
    """Runs the CLI on a fresh pty, types `script`, returns (exit status, everything it printed)."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    e = dict(os.environ, WARREN_API_URL="http://127.0.0.1:%d" % daemon.port, WARREN_API_KEY=daemon.admin_key)
    p = subprocess.Popen([WARREN, *args], stdin=slave, stdout=slave, stderr=slave, env=e, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.time() + timeout

    def read_until(marker):
        nonlocal out
        while marker not in out and time.time() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    return
    try:
        read_until(b"#")  # the prompt
        if resize:
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", resize[1], resize[0], 0, 0))
            os.kill(p.pid, __import__("signal").SIGWINCH)
            time.sleep(0.5)
        os.write(master, script)
        read_until(b"\x00never")
        return p.wait(timeout=10), out
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)


def test_shell_opens_a_terminal_and_exits_with_the_programs_code(daemon, sid):
    status, out = run_in_pty(daemon, ["sandbox", "shell", sid], b"echo $((6*7)); stty size; exit 7\r", timeout=10)
    assert status == 7, out
    assert b"42" in out and b"30 100" in out, out


def test_shell_follows_the_window_size(daemon, sid):
    status, out = run_in_pty(daemon, ["sandbox", "shell", sid], b"stty size; exit\r", resize=(120, 40), timeout=10)
    assert status == 0 and b"40 120" in out, out


def test_shell_needs_a_terminal(daemon, sid):
    r = cli(daemon, "sandbox", "shell", sid)
    assert r.returncode == 2 and b"terminal" in r.stderr


def test_image_import_of_a_registry_style_name_then_rm(tmp_path):
    root = tmp_path / "root" / "bin"
    root.mkdir(parents=True)
    (root / "hello").write_text("hi\n")
    subprocess.run(["tar", "-C", str(tmp_path / "root"), "-cf", str(tmp_path / "root.tar"), "."], check=True)
    data = str(tmp_path / "data")

    def image(*args):
        return subprocess.run([WARREN, "image", *args, "--data-dir", data],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)

    assert image("import", str(tmp_path / "root.tar"), "--tag", "127.0.0.1:5000/acme/tool:v1").returncode == 0
    assert json.loads(image("ls", "--json").stdout)["images"] == ["127.0.0.1:5000/acme/tool:v1"]
    assert image("rm", "127.0.0.1:5000/acme/tool:v1").returncode == 0
    assert json.loads(image("ls", "--json").stdout)["images"] == []
    r = image("rm", "127.0.0.1:5000/acme/tool:v1")
    assert r.returncode == 1 and b"unknown image" in r.stderr


# --- fork / hibernate / snapshots -------------------------------------------------------------

def test_fork_hibernate_resume_checkpoint_and_snapshot_commands(daemon, sid):
    assert cli(daemon, "sandbox", "exec", sid, "echo cli > /root/c").returncode == 0
    r = cli(daemon, "sandbox", "fork", sid, "--count", "2")
    assert r.returncode == 0, r.stderr
    kids = r.stdout.decode().split()
    assert len(kids) == 2
    for k in kids:
        assert cli(daemon, "sandbox", "exec", k, "cat /root/c").stdout == b"cli\n"
    assert cli(daemon, "sandbox", "rm", *kids).returncode == 0
    r = cli(daemon, "sandbox", "fork", sid, "--count", "two")
    assert r.returncode == 2
    r = cli(daemon, "sandbox", "hibernate", sid)
    assert r.returncode == 0 and r.stdout.decode().split() == [sid, "hibernated"], r.stderr
    r = cli(daemon, "sandbox", "exec", sid, "true")
    assert r.returncode != 0 and b"hibernated" in r.stderr
    r = cli(daemon, "sandbox", "resume", sid)
    assert r.returncode == 0 and r.stdout.decode().split() == [sid, "running"], r.stderr
    r = cli(daemon, "sandbox", "checkpoint", sid, "--name", "cli-snap")
    assert r.returncode == 0, r.stderr
    snap = r.stdout.decode().strip()
    assert snap.startswith("snap_")
    r = cli(daemon, "snapshot", "ls")
    assert r.returncode == 0 and snap in r.stdout.decode() and "cli-snap" in r.stdout.decode()
    r = cli(daemon, "snapshot", "restore", snap)
    assert r.returncode == 0, r.stderr
    restored = r.stdout.decode().strip()
    assert cli(daemon, "sandbox", "exec", restored, "cat /root/c").stdout == b"cli\n"
    assert cli(daemon, "sandbox", "rm", restored).returncode == 0
    assert cli(daemon, "snapshot", "rm", snap).returncode == 0
    r = cli(daemon, "snapshot", "rm", snap)
    assert r.returncode == 1 and b"no snapshot" in r.stderr
