"""A break-glass login page for Flask, on the Python binding's login flow.

    GET  /           the page: one step at a time (password, then code), with a message
    POST /begin      password -> breakglass.login_begin: the code goes to otp_email
    POST /complete   code -> breakglass.login_complete: a session cookie holds the token, and
                     the library raises the alarm (alert emails, webhook)
    GET  /protected  breakglass.session_check on the cookie: the page (with a logout button),
                     or 401
    POST /logout     breakglass.session_end, and the cookie is dropped

Every POST answers with a redirect to a GET (post/redirect/get): reloading a page never sends
the password again, so it never issues a new code that would void the one in the email. The
step and the message travel in the query string as fixed names (``?step=code&m=sent``), never
as text the client chose, so the page needs no server-side session and works the same in
every worker process.

Configured from the environment only (``breakglass.configure_from_env``), for example:

    BREAKGLASS_MAILER=file:///tmp/outbox BREAKGLASS_FROM_EMAIL=bg@example.com \\
    BREAKGLASS_OTP_EMAIL=oncall@example.com BREAKGLASS_ALERT_EMAILS=ops@example.com \\
    BREAKGLASS_PASSWORD_HASH='$argon2id$v=19$...' BREAKGLASS_ALLOWED_IPS=127.0.0.1 \\
    python examples/flask_login.py            # one process: http://127.0.0.1:8080/

Deployed, it runs under gunicorn with several workers (``examples/gunicorn.conf.py``), which
needs ``BREAKGLASS_STATE_DIR``: the login state (pending code, failure counts, the session)
then lives in that directory, shared by every worker of the host, instead of inside one worker
(a code issued by one worker would be unknown to the next). The directory must belong to the
service's user and be writable by it alone (mode 0700):

    BREAKGLASS_STATE_DIR=/run/breakglass ... gunicorn -c examples/gunicorn.conf.py

The client's address is ``request.remote_addr``: behind a reverse proxy, wrap the app in
werkzeug's ``ProxyFix`` (with the number of proxies you trust), or every login comes from the
proxy's address and one attacker locks everyone out. Behind TLS, make sure the app sees
https (ProxyFix's ``x_proto``), so that the session cookie is marked ``Secure``.

Every denial of a password is the same "not accepted" (the page does not say whether the
allow-list or the password refused it, which would tell an attacker something), but the page
does say "locked out" and for how long, and that a wrong code is used up, which the person at
the keyboard needs to know. Any other error from the library means "no access" too. The
reasons go to the log (stderr unless the host configures logging), never to the client.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import html
import logging
import os
import signal
import sys
from typing import Dict, Optional, Tuple

from flask import Flask, redirect, request
from werkzeug.wrappers import Response

import breakglass

COOKIE = "breakglass_session"

_log = logging.getLogger("flask_login_example")

# One small stylesheet, inline; the CSP admits exactly this text by its hash, and nothing
# else: no external resource, no script.
_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1rem;background:#f4f4f4;color:#111}"
    "main{max-width:28rem;margin:2rem auto;background:#fff;padding:1.25rem 1.5rem;"
    "border-radius:6px;box-shadow:0 1px 3px #0003}"
    "h1{font-size:1.35rem;margin:0 0 1rem}"
    "label{display:block;font-weight:600;margin:.75rem 0 .25rem}"
    "input{box-sizing:border-box;width:100%;font:inherit;padding:.6rem;border:1px solid #888;"
    "border-radius:4px}"
    "button{margin-top:1rem;width:100%;font:inherit;padding:.65rem;border:0;border-radius:4px;"
    "background:#0b57d0;color:#fff;cursor:pointer}"
    ".msg{padding:.6rem .8rem;border-radius:4px;background:#e8f0fe}"
    ".msg.bad{background:#fde8e8}.msg.ok{background:#e6f4ea}"
    "small{display:block;margin-top:1rem;color:#555}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

#: Sent with every answer: nothing is cached, the page cannot be framed, only this stylesheet
#: applies, forms post only to this site.
SECURITY_HEADERS: Dict[str, str] = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Break-glass login</title><style>{style}</style></head>
<body><main><h1>Break-glass login</h1>
{message}{body}
</main></body></html>"""

_PASSWORD_FORM = """<form method="post" action="/begin">
<label for="password">Break-glass password</label>
<input id="password" type="password" name="password" autocomplete="current-password" required autofocus>
<button type="submit">Send me a code</button></form>
<small>Emergency access only. Every login raises an alarm.</small>"""

# type=text and no pattern: the field also takes a recovery code such as 7KQ2-M9XD-4TFA-PW3H.
_CODE_FORM = """<form method="post" action="/complete">
<label for="code">Code from the email, or a recovery code</label>
<input id="code" type="text" name="code" autocomplete="one-time-code" autocapitalize="characters"
 spellcheck="false" required autofocus>
<button type="submit">Log in</button></form>
<small>No email? <a href="/">Start again</a>: a new code replaces this one.</small>"""

_SESSION_PAGE = """<p class="msg ok">Break-glass session active. Everything you do here is audited.</p>
<form method="post" action="/logout"><button type="submit">Log out</button></form>"""


def _minutes(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


def _setting(key: str) -> int:
    """A duration the page tells the user: the environment's value, else the library's
    default (the same sources configure_from_env reads)."""
    text = os.environ.get("BREAKGLASS_" + key.upper())
    if text is None:
        text = next((k.default for k in breakglass.config_keys() if k.name == key), None)
    try:
        return int(text or "0")
    except ValueError:
        return 0


def _messages() -> Dict[str, Tuple[str, str]]:
    """Message name -> (css class, text): the only messages the page shows (``?m=NAME``)."""
    ttl, lockout = _minutes(_setting("otp_ttl_seconds")), _minutes(_setting("lockout_seconds"))
    return {
        "sent": ("ok", f"A code is on its way to the break-glass address. It works once, for {ttl}."),
        "mailfailing": ("bad", "A code was queued, but mail to the break-glass address has been "
                               f"failing: if it does not arrive, type one of your recovery codes "
                               f"instead (the code works once, for {ttl})."),
        "denied": ("bad", "Not accepted. Check the password and try again."),
        "locked": ("bad", f"Locked out after too many failures. Try again in {lockout} "
                          "(an operator can lift it sooner)."),
        "used": ("bad", "That code was not right, and it is now used up: each code works once. "
                        "Start again with your password to get a new one."),
        "expired": ("bad", f"That code expired (codes work for {ttl}). Start again with your "
                           "password to get a new one."),
        "nocode": ("bad", "No code is waiting for you (it was used, or replaced by a newer one). "
                          "Start again with your password."),
        "unavailable": ("bad", "The break-glass login is unavailable right now."),
        "ended": ("ok", "Logged out."),
        "nosession": ("bad", "No break-glass session (it ended or expired). Log in again."),
    }


def _render(message: Optional[str], body: str, status: int = 200) -> Tuple[str, int]:
    text = ""
    if message:
        css, words = _messages().get(message, ("bad", ""))
        if words:
            text = f'<p class="msg {css}" role="status">{html.escape(words)}</p>\n'
    return _PAGE.format(style=_STYLE, message=text, body=body), status


def _after(message: str, step: str = "") -> Response:
    """Post/redirect/get: a 303 to the page for ``step`` showing ``message``."""
    query = f"?step={step}&m={message}" if step else f"?m={message}"
    return redirect("/" + query, code=303)


def _refused(e: Exception, step: str) -> Response:
    """Where a refused step leads; the reason goes to the log, never to the client."""
    _log.warning("break-glass login refused: %s", e)
    if isinstance(e, breakglass.LockedOut):
        return _after("locked")
    if isinstance(e, breakglass.LoginInvalid):
        return _after("used")  # a wrong code consumes the pending one
    if isinstance(e, breakglass.LoginExpired):
        return _after("expired")
    if isinstance(e, breakglass.LoginNoPendingOtp):
        return _after("nocode")
    if isinstance(e, (breakglass.LoginDenied, ValueError)):  # ValueError: a NUL in the input
        return _after("denied", step)
    return _after("unavailable")


def create_app() -> Flask:
    """The app; reads the BREAKGLASS_* environment (a bad value raises ArgumentError)."""
    breakglass.configure_from_env()
    app = Flask(__name__)

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/")
    def page() -> Tuple[str, int]:
        step = request.args.get("step")
        return _render(request.args.get("m"), _CODE_FORM if step == "code" else _PASSWORD_FORM)

    @app.post("/begin")
    def begin() -> Response:
        try:
            breakglass.login_begin(request.remote_addr or "", request.form.get("password", ""))
        except (breakglass.BreakGlassError, ValueError) as e:
            return _refused(e, "")
        # Queued is not delivered: when the last code email failed, say so and offer the other
        # way in rather than "a code was sent".
        return _after("mailfailing" if breakglass.code_email_failing() else "sent", "code")

    @app.post("/complete")
    def complete() -> Response:
        code = request.form.get("code", "").strip()
        try:
            token = breakglass.login_complete(request.remote_addr or "", code)
        except (breakglass.BreakGlassError, ValueError) as e:
            return _refused(e, "code")
        response = redirect("/protected", code=303)
        # HttpOnly: no script reads it; SameSite=Strict: no other site's form posts with it;
        # Secure whenever the page itself came over HTTPS.
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure,
                            path="/")
        return response

    @app.get("/protected")
    def protected() -> Tuple[str, int]:
        try:
            breakglass.session_check(request.cookies.get(COOKIE, ""))
        except (breakglass.BreakGlassError, ValueError):
            return _render("nosession", _PASSWORD_FORM, 401)
        return _render(None, _SESSION_PAGE)

    @app.post("/logout")
    def logout() -> Response:
        try:
            breakglass.session_end(request.cookies.get(COOKIE, ""))
        except (breakglass.BreakGlassError, ValueError):
            pass  # already over: the cookie goes anyway
        response = _after("ended")
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=request.is_secure)
        return response

    return app


#: How long a stopping process waits for alarms still in the queue (and their retries).
FLUSH_SECONDS = 10.0


def flush_before_exit() -> None:
    """Waits, at most FLUSH_SECONDS, for queued alarms: one raised just before a SIGTERM must
    still go out. Says so on the log when the time ran out."""
    try:
        breakglass.flush(FLUSH_SECONDS)
    except breakglass.FlushTimeoutError:
        _log.error("break-glass alarms still queued after %.0f s at exit: they may be lost", FLUSH_SECONDS)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    # Python's default SIGTERM ends the process without running atexit: turn it into a
    # normal exit, so that the flush below runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    atexit.register(flush_before_exit)
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
