#!/usr/bin/env python3
"""SSH_ASKPASS for the sshd tests: ssh runs it once per keyboard-interactive prompt, with the
prompt as its argument, and sends what it prints.

    BG_ASK_PASSWORD  the answer to "Break-glass password: "
    BG_ASK_OUTBOX    the file outbox to read the code from
    BG_ASK_CODE      "right": the newest code email's code; "wrong": that code with its last
                     digit changed
"""

import os
import re
import sys
import time
from pathlib import Path

MARK = re.compile(r"one-time code is: ([0-9]{6})")


def newest_code(outbox: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(outbox.iterdir(), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for p in files:
            m = MARK.search(p.read_text(errors="replace"))
            if m:
                return m.group(1)
        time.sleep(0.05)
    return ""


def main() -> int:
    prompt = sys.argv[1] if len(sys.argv) > 1 else ""
    if "password" in prompt.lower():
        print(os.environ["BG_ASK_PASSWORD"])
    elif "code:" in prompt.lower():
        code = newest_code(Path(os.environ["BG_ASK_OUTBOX"]))
        if os.environ.get("BG_ASK_CODE") == "wrong" and code:
            code = code[:-1] + str((int(code[-1]) + 1) % 10)
        print(code)
    else:
        print("")
    return 0


if __name__ == "__main__":
    sys.exit(main())
