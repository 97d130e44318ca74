#!/usr/bin/env python3
"""A tiny PAM application for the tests: one ``pam_authenticate`` through libpam itself, with the
service read from a directory of the test's own (``pam_start_confdir``, Linux-PAM >= 1.4), so
neither root nor /etc/pam.d is involved.

    pamdrive.py --confdir DIR --service NAME --user USER [--rhost ADDR] [--session]
                [--fork-password PW] [--silent]

Protocol on stdout, one JSON object a line: ``{"style": N, "text": "..."}`` for every message
the module sends (1 = prompt without echo, 2 = with echo, 3 = error, 4 = info); for a prompt it
then reads the answer as one line of stdin (end of input: a conversation error). Last line:
``{"rc": N, ...}``, with ``setcred``, ``open`` and ``close`` after a success with --session,
and ``child_rc`` with --fork-password: after the module ran, the process forks, and the child
runs a second authentication answering that password (and an empty code).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from ctypes import (CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_int, c_size_t, c_void_p,
                    cast, sizeof)

PAM_RHOST = 4
PAM_ESTABLISH_CRED = 0x2
PAM_CONV_ERR = 19
PAM_SILENT = 0x8000

libpam = ctypes.CDLL("libpam.so.0")
libc = ctypes.CDLL(None)
libc.calloc.restype = c_void_p
libc.calloc.argtypes = [c_size_t, c_size_t]
libc.strdup.restype = c_void_p
libc.strdup.argtypes = [c_char_p]
libc.free.argtypes = [c_void_p]


class PamMessage(Structure):
    _fields_ = [("msg_style", c_int), ("msg", c_char_p)]


class PamResponse(Structure):
    _fields_ = [("resp", c_void_p), ("resp_retcode", c_int)]


CONV = CFUNCTYPE(c_int, c_int, POINTER(POINTER(PamMessage)), POINTER(POINTER(PamResponse)),
                 c_void_p)


class PamConv(Structure):
    _fields_ = [("conv", CONV), ("appdata_ptr", c_void_p)]


def make_conv(answer):
    def conv(n, msgs, resp, _data):
        arr = libc.calloc(n, sizeof(PamResponse))
        out = cast(arr, POINTER(PamResponse))
        for i in range(n):
            m = msgs[i].contents
            text = (m.msg or b"").decode(errors="replace")
            print(json.dumps({"style": m.msg_style, "text": text}), flush=True)
            if m.msg_style in (1, 2):
                line = answer(text)
                if line is None:
                    for j in range(i):
                        libc.free(out[j].resp)
                    libc.free(arr)
                    return PAM_CONV_ERR
                out[i].resp = libc.strdup(line.encode())
        resp[0] = out
        return 0

    return CONV(conv)


def stdin_answer(_text):
    line = sys.stdin.readline()
    return None if not line else line.rstrip("\n")


def authenticate(args, answer, session=False):
    conv_fn = make_conv(answer)
    conv = PamConv(conv_fn, None)
    handle = c_void_p()
    rc = libpam.pam_start_confdir(args.service.encode(), args.user.encode(), byref(conv),
                                  args.confdir.encode(), byref(handle))
    if rc != 0:
        return {"rc": rc, "start": "failed"}
    if args.rhost is not None:
        libpam.pam_set_item(handle, PAM_RHOST, c_char_p(args.rhost.encode()))
    out = {"rc": libpam.pam_authenticate(handle, PAM_SILENT if args.silent else 0)}
    if out["rc"] == 0 and session:
        out["setcred"] = libpam.pam_setcred(handle, PAM_ESTABLISH_CRED)
        out["open"] = libpam.pam_open_session(handle, 0)
        out["close"] = libpam.pam_close_session(handle, 0)
    libpam.pam_end(handle, out["rc"])
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--confdir", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--rhost")
    p.add_argument("--session", action="store_true")
    p.add_argument("--silent", action="store_true", help="pam_authenticate with PAM_SILENT")
    p.add_argument("--fork-password")
    args = p.parse_args()
    out = authenticate(args, stdin_answer, args.session)
    if args.fork_password is not None:
        answers = iter([args.fork_password, ""])
        pid = os.fork()
        if pid == 0:
            # The child's messages are not the test's to answer.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            child = authenticate(args, lambda _t: next(answers, None))
            os._exit(child["rc"])
        _, status = os.waitpid(pid, 0)
        out["child_rc"] = os.waitstatus_to_exitcode(status)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
