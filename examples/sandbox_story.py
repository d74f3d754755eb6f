"""A sandbox's life: create it, run code, stream a long job, keep a shell, move files, destroy
it and see what it used. `python3 examples/sandbox_story.py` with a daemon on this machine."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sdk", "python"))
from warren import Sandbox, WarrenTimeoutError  # noqa: E402

IMAGE = os.environ.get("WARREN_IMAGE", "debian:bookworm")


def main():
    sb = Sandbox(IMAGE, mem_mib=512, timeout=30, sandbox_timeout=300, env={"GREETING": "hello"})
    info = sb.create()
    print("created %s (%s) in %.1f ms" % (info.id, info.image, info.create_ms))
    try:
        out = sb.exec("echo $GREETING from $(uname -n); exit 3")
        print("exec:", repr(out.stdout), "exit", out.exit_code, "ok" if out.ok else "failed")

        sb.exec_stream("for i in 1 2 3; do echo step $i; sleep 0.5; done",
                       on_stdout=lambda chunk: print("  stream:", chunk, end=""))
        try:
            sb.exec("echo started; sleep 60", timeout=1)
        except WarrenTimeoutError as e:
            print("timed out after printing", repr(e.stdout))

        sb.write_text("/work/data.csv", "a,b\n1,2\n")
        print("ls /work:", [(f.name, f.size) for f in sb.ls("/work")])
        print("read back:", repr(sb.download("/work/data.csv")))

        try:
            with sb.shell() as sh:  # one bash: cd and exports persist
                sh.run("cd /work && export FOO=bar")
                print("shell:", sh.run("echo $FOO in $(pwd)").stdout, end="")
        except Exception as e:  # images without bash, or no `websockets` package
            print("shell skipped:", e)
    finally:
        stats = sb.destroy()
        print("destroyed: cpu %s ms, peak memory %d bytes, up %s ms"
              % (stats.cpu_ms, stats.mem_peak_bytes, stats.uptime_ms))


if __name__ == "__main__":
    main()
