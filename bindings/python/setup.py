"""Makes the wheel a platform wheel when it carries libbreakglass.so (``make wheel``).

The metadata lives in pyproject.toml. This file only decides the wheel's tag: without a
library next to ``_ffi.py`` the package is pure Python (``py3-none-any``) and loads the library
from ``$BREAKGLASS_LIBRARY`` or the system; with one, the wheel is
``py3-none-manylinux_2_X_<arch>``, where 2.X is the newest glibc symbol version the library
needs. ``py3-none``: ctypes needs no particular Python ABI. A wheel holding a native library
is never tagged ``any``, and never ``Root-Is-Purelib``.
"""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path
from typing import Tuple

from setuptools import Distribution, setup

try:  # setuptools >= 70.1 has its own; before that it came with the wheel package
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

LIBRARY = Path(__file__).resolve().parent / "src" / "breakglass" / "libbreakglass.so"


def glibc_needed(library: Path) -> Tuple[int, int]:
    """The newest GLIBC_x.y symbol version ``library`` needs, from readelf's version-needs
    section (binutils: present wherever the library was linked)."""
    out = subprocess.run(
        ["readelf", "--version-info", "--wide", str(library)], check=True, capture_output=True, text=True
    ).stdout
    versions = {(int(m.group(1)), int(m.group(2))) for m in re.finditer(r"Name: GLIBC_(\d+)\.(\d+)", out)}
    if not versions:
        raise SystemExit(f"{library}: no GLIBC_x.y version needed; cannot choose a manylinux tag")
    return max(versions)


def platform_tag(library: Path) -> str:
    major, minor = glibc_needed(library)
    arch = platform.machine()
    if major != 2 or not arch:
        raise SystemExit(f"{library}: cannot tag glibc {major}.{minor} on {arch!r}")
    return f"manylinux_{major}_{minor}_{arch}"


class BinaryDistribution(Distribution):
    """A distribution with native code: installed to platlib, and its wheel not pure."""

    def has_ext_modules(self) -> bool:
        return True


class platform_wheel(bdist_wheel):  # type: ignore[misc,valid-type]
    """bdist_wheel with the library's platform tag (instead of cpXY-cpXY-linux_<arch>)."""

    def get_tag(self) -> Tuple[str, str, str]:
        return ("py3", "none", platform_tag(LIBRARY))


if LIBRARY.exists():
    setup(distclass=BinaryDistribution, cmdclass={"bdist_wheel": platform_wheel})
else:
    setup()
