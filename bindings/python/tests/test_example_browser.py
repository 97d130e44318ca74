"""examples/flask_login.py in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, through Selenium) on a phone-sized window, against the example served by
gunicorn. The whole login, a reload of the code page (no second code), and a typo (the page
says the code is used up). Screenshots go to build/screenshots/ for a person to look at."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from conftest import REPO
from examplekit import PASSWORD, Gunicorn, password_hash
from outbox import CODE_MARK, Outbox

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is installed by make deps")
pytest.importorskip("gunicorn", reason="gunicorn is installed by make deps")
pytest.importorskip("argon2", reason="argon2-cffi is installed by make deps")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = REPO / "build" / "screenshots"

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.fail("chromium and chromium-driver are missing: run make deps (.ci/deps.sh installs them)",
                pytrace=False)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Tuple[str, Outbox]]:
    box = Outbox(tmp_path / "outbox")
    box.path.mkdir()
    env = {
        "BREAKGLASS_MAILER": box.mailer,
        "BREAKGLASS_FROM_EMAIL": "bg@example.com",
        "BREAKGLASS_OTP_EMAIL": "oncall@example.com",
        "BREAKGLASS_ALERT_EMAILS": "ops@example.com",
        "BREAKGLASS_PASSWORD_HASH": password_hash(),
        "BREAKGLASS_ALLOWED_IPS": "127.0.0.1",
    }
    server = Gunicorn(env, workers=1, log=tmp_path / "gunicorn.log")
    try:
        server.wait_ready()
        yield f"http://127.0.0.1:{server.port}", box
    finally:
        server.terminate()


@pytest.fixture
def browser() -> Iterator[object]:
    profile = tempfile.mkdtemp(prefix="bg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # A phone: 390 CSS px wide, touch, mobile layout (which lays a page without a viewport tag
    # out 980 px wide and shrinks it).
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2}})
    # The driver is Debian's: Selenium must not look for (or download) one of its own.
    os.environ["SE_OFFLINE"] = "true"
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _shot(driver: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _code_emails(box: Outbox) -> int:
    return sum(CODE_MARK in p.read_text(errors="replace") for p in box.path.iterdir())


def _wait_code(box: Outbox, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(CODE_MARK in p.read_text(errors="replace") for p in box.path.iterdir() if p not in box.seen):
            return box.new_code()
        time.sleep(0.05)
    raise AssertionError("no code email arrived")


def _message(driver: object) -> str:
    return driver.find_element(By.CSS_SELECTOR, "p.msg").text


def _click(driver: object, selector: str) -> None:
    """Clicks a submit button and waits until the next page has replaced this one and has
    finished loading. (Staleness alone is not enough: the old page goes stale as the next one
    starts loading, and under load an element found that early belonged to a document that
    was replaced before the next click, "Node with given id does not belong to the document".)"""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(page))
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def _submit(driver: object, field: str, text: str) -> None:
    box = driver.find_element(By.NAME, field)
    box.clear()
    box.send_keys(text)
    _click(driver, "button[type=submit]")


def test_login_reload_and_logout_in_chromium(site: Tuple[str, Outbox], browser: object):
    url, box = site
    d = browser
    d.get(url + "/")
    # A phone-sized page: the form fills the width (a page without a viewport would be laid
    # out 980 px wide and shrunk, leaving the field a fraction of the window).
    assert d.execute_script("return window.innerWidth") <= 400
    field = d.find_element(By.NAME, "password")
    assert field.size["width"] >= 280, field.size
    assert not d.find_elements(By.NAME, "code")  # one step at a time
    _shot(d, "1-password")

    _submit(d, "password", PASSWORD)
    assert "/?step=code" in d.current_url
    assert "A code is on its way" in _message(d) and "10 minutes" in _message(d)
    code = _wait_code(box)
    _shot(d, "2-code-sent")
    # A reload re-gets the page (post/redirect/get): no second code, the first one still works.
    d.refresh()
    assert "A code is on its way" in _message(d)
    time.sleep(0.5)
    assert _code_emails(box) == 1

    _submit(d, "code", code)
    assert d.current_url.endswith("/protected")
    assert "session active" in d.find_element(By.TAG_NAME, "body").text
    cookie = d.get_cookie("breakglass_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    _shot(d, "3-session")

    _click(d, "form[action='/logout'] button")
    assert "Logged out." in _message(d)
    assert d.get_cookie("breakglass_session") is None
    _shot(d, "4-logged-out")
    d.get(url + "/protected")
    assert "No break-glass session" in _message(d)


def test_a_typo_in_chromium_says_the_code_is_used_up(site: Tuple[str, Outbox], browser: object):
    url, box = site
    d = browser
    d.get(url + "/")
    _submit(d, "password", PASSWORD)
    code = _wait_code(box)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    _submit(d, "code", wrong)
    assert "now used up" in _message(d)
    assert d.find_elements(By.NAME, "password")  # back to step one
    _shot(d, "5-typo")
    # Starting again gets a new code, and that one works.
    _submit(d, "password", PASSWORD)
    _submit(d, "code", _wait_code(box))
    assert d.current_url.endswith("/protected")
