#!/usr/bin/env python3
"""Python side of libbreakglass's benchmarks (run by benches/run.sh with the build venv).

    bench.py hot                 breakglass.generate/verify vs bare ctypes vs secrets+hmac
    bench.py latency SMTP HTTP   breakglass.alert/send_otp per call (stalled servers) vs a
                                 synchronous smtplib send (SMTP is an ok server's port)
    bench.py smtplib-latency SMTP
    bench.py fanout SMTP N       one alert to N recipients vs smtplib loops
    bench.py import              time to import breakglass (fresh interpreter)

Prints "name value unit" lines. BREAKGLASS_LIBRARY selects the library.
"""
import ctypes
import hmac
import os
import secrets
import smtplib
import statistics
import subprocess
import sys
import threading
import time
import timeit


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


def emit(name, value, unit):
    print(f"{name} {value:.2f} {unit}", flush=True)


def per_call(stmt, number, repeat, setup="pass", g=None):
    runs = timeit.Timer(stmt, setup=setup, globals=g).repeat(repeat=repeat, number=number)
    return [r / number * 1e9 for r in runs]


def hot():
    import breakglass

    lib = ctypes.CDLL(os.environ["BREAKGLASS_LIBRARY"])
    lib.bg_generate.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.bg_generate.restype = ctypes.c_int32
    lib.bg_verify.argtypes = [ctypes.c_char_p]
    lib.bg_verify.restype = ctypes.c_int32
    buf = ctypes.create_string_buffer(7)

    lock = threading.Lock()
    pending = [None]

    def py_generate():
        code = f"{secrets.randbelow(10**6):06d}"
        with lock:
            pending[0] = (code, time.monotonic())
        return code

    def py_verify(code):
        with lock:
            p, pending[0] = pending[0], None
        if p is None or time.monotonic() - p[1] >= 600:
            return False
        return hmac.compare_digest(p[0].encode(), code.encode())

    def bare_pair():
        lib.bg_generate(buf, 7)
        lib.bg_verify(buf.value)

    g = dict(breakglass=breakglass, lib=lib, buf=buf, py_generate=py_generate,
             py_verify=py_verify, bare_pair=bare_pair)
    cases = [
        ("py_binding_generate", "breakglass.generate()"),
        ("py_binding_pair", "breakglass.verify(breakglass.generate())"),
        ("py_bare_generate", "lib.bg_generate(buf, 7)"),
        ("py_bare_pair", "bare_pair()"),
        ("py_stdlib_generate", "py_generate()"),
        ("py_stdlib_pair", "py_verify(py_generate())"),
    ]
    # The cases take turns, one repeat each, so a disturbance on the shared machine falls on
    # all of them alike instead of on whichever case happened to be running.
    samples = {name: [] for name, _ in cases}
    for _, stmt in cases:
        per_call(stmt, 2000, 5, g=g)  # warm up
    for _ in range(300):
        for name, stmt in cases:
            samples[name] += per_call(stmt, 1000, 1, g=g)
    for name, _ in cases:
        v = samples[name]
        emit(name + "_median", statistics.median(v), "ns")
        emit(name + "_p99", pct(v, 0.99), "ns")


def latency(smtp, http):
    import breakglass

    breakglass.configure(mailer=f"smtp://127.0.0.1:{smtp}?tls=opportunistic",
                         alert_webhook_url=f"http://127.0.0.1:{http}/hook",
                         from_email="bg@example.com", otp_email="admin@example.com",
                         alert_emails="ops@example.com")
    import logging
    logging.getLogger("breakglass").setLevel(logging.CRITICAL)
    code = breakglass.generate()
    a, o = [], []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        breakglass.alert("203.0.113.7")
        a.append(time.perf_counter_ns() - t0)
        t0 = time.perf_counter_ns()
        try:
            breakglass.send_otp(code)
        except breakglass.QueueFullError:
            pass
        o.append(time.perf_counter_ns() - t0)
    for name, v in (("py_alert", a), ("py_send_otp", o)):
        emit(name + "_p50", pct(v, 0.5) / 1e3, "us")
        emit(name + "_p99", pct(v, 0.99) / 1e3, "us")
        emit(name + "_max", max(v) / 1e3, "us")
    sys.stdout.flush()
    os._exit(0)  # workers are blocked on the stalled servers


MSG = "From: bg@example.com\r\nTo: {to}\r\nSubject: [BREAK-GLASS] test\r\n\r\nbody\r\n"


def smtplib_latency(smtp):
    v = []
    for i in range(200):
        t0 = time.perf_counter_ns()
        with smtplib.SMTP("127.0.0.1", smtp) as s:
            s.sendmail("bg@example.com", ["ops@example.com"], MSG.format(to="ops@example.com"))
        v.append(time.perf_counter_ns() - t0)
    emit("py_smtplib_send_p50", pct(v, 0.5) / 1e3, "us")
    emit("py_smtplib_send_p99", pct(v, 0.99) / 1e3, "us")
    emit("py_smtplib_send_max", max(v) / 1e3, "us")


def fanout(smtp, n):
    import breakglass

    import logging
    logging.getLogger("breakglass").setLevel(logging.ERROR)
    rcpts = [f"ops{i}@example.com" for i in range(n)]
    breakglass.configure(mailer=f"smtp://127.0.0.1:{smtp}?tls=opportunistic",
                         from_email="bg@example.com", alert_emails=",".join(rcpts))
    # warm up: a connection and the workers
    breakglass.alert("192.0.2.1")
    breakglass.flush(60)
    lib_t, per_msg, reused = [], [], []
    for _ in range(5):
        before = breakglass.stats().emails_sent
        t0 = time.perf_counter()
        breakglass.alert("192.0.2.1")
        breakglass.flush(120)
        lib_t.append(time.perf_counter() - t0)
        assert breakglass.stats().emails_sent - before == n, "not every alert email was sent"

        t0 = time.perf_counter()
        for to in rcpts:
            with smtplib.SMTP("127.0.0.1", smtp) as s:
                s.sendmail("bg@example.com", [to], MSG.format(to=to))
        per_msg.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", smtp) as s:
            for to in rcpts:
                s.sendmail("bg@example.com", [to], MSG.format(to=to))
        reused.append(time.perf_counter() - t0)
    emit("fanout_library", statistics.median(lib_t) * 1e3, "ms")
    emit("fanout_smtplib_connection_per_message", statistics.median(per_msg) * 1e3, "ms")
    emit("fanout_smtplib_one_connection", statistics.median(reused) * 1e3, "ms")


def import_time():
    base, imp, first = [], [], []
    # The import itself, then the first call (which starts the lazily imported logging link).
    first_code = ("import time; t=time.perf_counter(); import breakglass; breakglass.version(); "
                  "breakglass.clear(); print(time.perf_counter()-t)")
    for _ in range(15):
        out = subprocess.run([sys.executable, "-c", first_code],
                             capture_output=True, text=True, check=True).stdout
        first.append(float(out))
        code = "import time; t=time.perf_counter(); import {m}; print(time.perf_counter()-t)"
        out = subprocess.run([sys.executable, "-c", code.format(m="breakglass")],
                             capture_output=True, text=True, check=True).stdout
        imp.append(float(out))
        out = subprocess.run([sys.executable, "-c", code.format(m="ctypes")],
                             capture_output=True, text=True, check=True).stdout
        base.append(float(out))
    emit("py_import_breakglass", statistics.median(imp) * 1e3, "ms")
    emit("py_import_ctypes_alone", statistics.median(base) * 1e3, "ms")
    emit("py_import_breakglass_first_call", statistics.median(first) * 1e3, "ms")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "hot":
        hot()
    elif cmd == "latency":
        latency(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "smtplib-latency":
        smtplib_latency(int(sys.argv[2]))
    elif cmd == "fanout":
        fanout(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "import":
        import_time()
    else:
        sys.exit(__doc__)
