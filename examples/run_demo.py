#!/usr/bin/env python3
"""Runs the C demo with a local webhook listener, then shows what was delivered.

Usage: run_demo.py ./build/demo   (with BREAKGLASS_DEMO_OUTBOX set; `make demo` does this)
The listener binds 127.0.0.1 on a free port and stops when the demo ends.
"""
import email
import email.policy
import json
import os
import pathlib
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

received = []


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received.append((self.headers, body.decode("utf-8", "replace")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> int:
    demo = sys.argv[1]
    outbox = pathlib.Path(os.environ["BREAKGLASS_DEMO_OUTBOX"])
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env["BREAKGLASS_ALERT_WEBHOOK_URL"] = f"http://127.0.0.1:{server.server_address[1]}/breakglass"
    env["BREAKGLASS_ALERT_WEBHOOK_SECRET"] = "demo-secret"
    # The login flow: a password hashed by the library's own tool, and who may try.
    password = "correct horse battery staple"
    tool = os.environ.get("BREAKGLASS_DEMO_TOOL", "target/debug/breakglass")
    env["BREAKGLASS_PASSWORD_HASH"] = subprocess.run(
        [tool, "hash-password"], input=password + "\n", capture_output=True, text=True,
        check=True, timeout=60).stdout.strip()
    env["BREAKGLASS_ALLOWED_IPS"] = "127.0.0.1, ::1, 203.0.113.0/24"
    env["BREAKGLASS_DEMO_PASSWORD"] = password
    try:
        rc = subprocess.run([demo], env=env, timeout=120).returncode
    finally:
        server.shutdown()

    print("\nwebhook listener received:")
    if not received:
        print("  nothing")
    for headers, body in received:
        print("  X-Breakglass-Signature:", headers.get("X-Breakglass-Signature"))
        print("  " + json.dumps(json.loads(body), indent=2).replace("\n", "\n  "))
    print(f"\noutbox {outbox}:")
    for eml in sorted(outbox.glob("*.eml")):
        with eml.open("rb") as f:
            subject = email.message_from_binary_file(f, policy=email.policy.default)["Subject"]
        print(f"  {eml.name}  Subject: {subject}")
    # Two code emails and two alerts (2 recipients each): the login's and the primitives'.
    ok = rc == 0 and len(received) == 2 and len(list(outbox.glob("*.eml"))) == 6
    print("\ndemo " + ("finished: every step behaved as documented" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
