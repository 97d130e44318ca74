"""A break-glass login page for Flask, on the Python binding's login flow.

    GET  /           the form: password (step 1) and code (step 2)
    POST /begin      password -> breakglass.login_begin: the code goes to otp_email
    POST /complete   code -> breakglass.login_complete: a session cookie holds the token, and
                     the library raises the alarm (alert emails, webhook)
    GET  /protected  breakglass.session_check on the cookie: the page, or 401
    POST /logout     breakglass.session_end, and the cookie is dropped

Configured from the environment only (``breakglass.configure_from_env``), for example:

    BREAKGLASS_MAILER=file:///tmp/outbox BREAKGLASS_FROM_EMAIL=bg@example.com \\
    BREAKGLASS_OTP_EMAIL=oncall@example.com BREAKGLASS_ALERT_EMAILS=ops@example.com \\
    BREAKGLASS_PASSWORD_HASH='$argon2id$v=19$...' BREAKGLASS_ALLOWED_IPS=127.0.0.1 \\
    python examples/flask_login.py            # serves http://127.0.0.1:8080/

The client's address is ``request.remote_addr``: behind a reverse proxy, wrap the app in
werkzeug's ``ProxyFix`` (with the number of proxies you trust), or every login comes from the
proxy's address and one attacker locks everyone out.

Every denial is a ``breakglass.LoginDenied``; the page does not say which check refused a
password (allow-list or password), so that it tells an attacker nothing, but it does say
"locked out", which an operator needs to know. Any other error from the library means "no
access" too.
"""

from __future__ import annotations

import atexit
import html
import logging
import os
from typing import Tuple

from flask import Flask, Response, make_response, redirect, request

import breakglass

COOKIE = "breakglass_session"

_FORM = """<!doctype html><title>Break-glass login</title>
<h1>Break-glass login</h1><p>{message}</p>
<form method="post" action="/begin"><label>Password <input type="password" name="password"
 autocomplete="current-password"></label> <button>Send me a code</button></form>
<form method="post" action="/complete"><label>Code <input name="code" inputmode="numeric"
 autocomplete="one-time-code"></label> <button>Log in</button></form>"""

_log = logging.getLogger("flask_login_example")


def _page(message: str, status: int) -> Tuple[str, int]:
    return _FORM.format(message=html.escape(message)), status


def _denied(e: breakglass.BreakGlassError) -> Tuple[str, int]:
    """The answer to a refused step; the reason goes to the log, not to the client."""
    _log.warning("break-glass login refused: %s", e)
    if isinstance(e, breakglass.LockedOut):
        return _page("Locked out: too many failures. Try again later.", 429)
    if isinstance(e, breakglass.LoginDenied):
        return _page("Denied.", 403)
    return _page("The break-glass login is unavailable.", 503)


def create_app() -> Flask:
    """The app; reads the BREAKGLASS_* environment (a bad value raises ArgumentError)."""
    breakglass.configure_from_env()
    app = Flask(__name__)

    @app.get("/")
    def form() -> Tuple[str, int]:
        return _page("Emergency access. Every login raises an alarm.", 200)

    @app.post("/begin")
    def begin() -> Tuple[str, int]:
        try:
            breakglass.login_begin(request.remote_addr or "", request.form.get("password", ""))
        except breakglass.BreakGlassError as e:
            return _denied(e)
        except ValueError:  # a NUL in the input: it cannot reach the library
            return _page("Denied.", 403)
        return _page("A code was sent to the break-glass address.", 200)

    @app.post("/complete")
    def complete() -> Response | Tuple[str, int]:
        try:
            token = breakglass.login_complete(request.remote_addr or "", request.form.get("code", ""))
        except breakglass.BreakGlassError as e:
            return _denied(e)
        except ValueError:  # a NUL in the input: it cannot reach the library
            return _page("Denied.", 403)
        response = make_response(redirect("/protected", code=303))
        # HttpOnly: no script reads it; SameSite=Strict: no other site's form posts with it;
        # Secure whenever the page itself came over HTTPS.
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure)
        return response

    @app.get("/protected")
    def protected() -> Tuple[str, int]:
        try:
            breakglass.session_check(request.cookies.get(COOKIE, ""))
        except (breakglass.BreakGlassError, ValueError):
            return "No break-glass session.", 401
        return "Break-glass session active. Everything you do here is audited.", 200

    @app.post("/logout")
    def logout() -> Response:
        try:
            breakglass.session_end(request.cookies.get(COOKIE, ""))
        except (breakglass.BreakGlassError, ValueError):
            pass  # already over: the cookie goes anyway
        response = make_response(redirect("/", code=303))
        response.delete_cookie(COOKIE)
        return response

    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    # An alarm raised just before exit must still go out.
    atexit.register(breakglass.flush, 30)
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
