"""``python -m breakglass ...`` and the ``breakglass`` console script: the library's operator
tool (``hash-password``, ``check-config``, ``drill``, ``audit``), run as it is.

The tool is a program of its own (the Rust ``breakglass`` binary): a platform wheel carries it
in ``breakglass/bin/``, next to the bundled library (``make wheel``). From a checkout, the one
beside the loaded library is used (``target/debug/breakglass`` next to
``target/debug/libbreakglass.so``). This module only finds it and replaces the Python process
with it (``execv``): arguments, stdin, the terminal, the exit status are the tool's own.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional


def tool_path() -> Optional[str]:
    """The ``breakglass`` program to run, or None when this install has none."""
    here = os.path.dirname(os.path.realpath(__file__))
    candidates = [os.path.join(here, "bin", "breakglass")]
    from . import _ffi  # the loaded library's directory: a checkout's build tree

    candidates.append(os.path.join(os.path.dirname(os.path.realpath(_ffi.lib._name)), "breakglass"))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = tool_path()
    if path is None:
        sys.stderr.write(
            "breakglass: this install carries no breakglass tool: install a platform wheel "
            "(make wheel) or the library and its tool (make install)\n"
        )
        return 2
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(path, [path, *args])
    return 127  # not reached: execv either replaces the process or raises


if __name__ == "__main__":
    sys.exit(main())
