"""The built file itself: its name, its exports, its dynamic section, `make install`."""

from __future__ import annotations

import subprocess

import pytest
from conftest import MODULE, REPO, which


def dynamic_symbols() -> list:
    out = subprocess.run(["nm", "-D", "--defined-only", str(MODULE)], check=True,
                         capture_output=True, text=True).stdout
    return sorted(line.split()[-1] for line in out.splitlines() if line.strip())


def test_it_exports_only_the_pam_entry_points():
    assert MODULE.name == "pam_breakglass.so"
    assert dynamic_symbols() == ["pam_sm_authenticate", "pam_sm_close_session",
                                 "pam_sm_open_session", "pam_sm_setcred"]


def test_its_dynamic_section():
    out = subprocess.run(["readelf", "-d", str(MODULE)], check=True, capture_output=True,
                         text=True).stdout
    assert "Library soname: [pam_breakglass.so]" in out  # not the library's libbreakglass.so.0
    assert "NODELETE" in out  # pam_end's dlclose never unmaps code a delivery thread runs
    assert "libbreakglass" not in out  # the library is linked in, not needed at run time


@pytest.mark.skipif(which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("pamdir", [None, "/lib/x86_64-linux-gnu/security"])
def test_make_install_puts_it_in_the_pam_directory(tmp_path, pamdir):
    args = ["make", "-s", "--no-print-directory", "-C", str(REPO), "INSTALL_FROM=debug",
            f"DESTDIR={tmp_path}", "PREFIX=/usr"] + ([f"PAMDIR={pamdir}"] if pamdir else [])
    subprocess.run(args + ["install"], check=True, capture_output=True)
    installed = tmp_path / (pamdir or "/usr/lib/security").lstrip("/") / "pam_breakglass.so"
    assert installed.is_file()
    assert installed.stat().st_mode & 0o7777 == 0o644
    subprocess.run(args + ["uninstall"], check=True, capture_output=True)
    assert not installed.exists()
