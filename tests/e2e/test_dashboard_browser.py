"""The dashboard in a real browser: Debian's chromium driven headless by
chromedriver (python3-selenium), against a real daemon, engine and
registry. A screenshot of the main page is saved in the test's directory
(and in build/screenshots/dashboard.png) on every run.

Container names cannot hold "<", so the script-injection case is a label:
refit.track="semver:<script>...</script>", whose error text (quoting the
label) is shown in the row.
"""

import os
import shutil
import time

import pytest

from daemontools import Daemon
from harness import wait_for
from swaptools import same_digest, stale_pair

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
XSS = "<script>alert(1)</script>"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def browser(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        pytest.skip("python3-selenium is not installed (make deps): %s" % e)
    for p in (CHROMIUM, DRIVER):
        if not os.access(p, os.X_OK):
            pytest.skip("%s is not installed (make deps installs chromium and chromium-driver)" % p)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--user-data-dir=%s" % (tmp_path / "chromium")):
        opts.add_argument(a)
    try:
        drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    except Exception as e:          # noqa: BLE001 -- said in the skip reason
        pytest.skip("chromium cannot run here: %s" % str(e).splitlines()[0])
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def row(drv, name):
    from selenium.webdriver.common.by import By
    return drv.find_element(By.CSS_SELECTOR, 'tr[data-name="%s"]' % name)


def current_digest(drv, name):
    from selenium.webdriver.common.by import By
    try:
        return row(drv, name).find_element(By.CSS_SELECTOR, "td.current .digest").get_attribute("title")
    except Exception:               # noqa: BLE001 -- the row is being replaced
        return None


def click_action(drv, name, action):
    """Clicks the button; the live stream re-renders a row when an event
    arrives, so a button found just before may be gone by the click: find
    it again, as a person would, for up to 10 s."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    sel = 'button[value="%s:%s"]' % (action, name) if name else 'button[data-action="%s"]' % action
    deadline = time.monotonic() + 10
    while True:
        try:
            (row(drv, name).find_element(By.CSS_SELECTOR, sel) if name else
             drv.find_element(By.CSS_SELECTOR, ".bar " + sel)).click()
            return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def accept_confirm(drv):
    wait_for(lambda: _alert(drv) is not None, 10, what="the confirmation question")
    _alert(drv).accept()


def _alert(drv):
    try:
        a = drv.switch_to.alert
        a.text
        return a
    except Exception:               # noqa: BLE001
        return None


def live_text(drv):
    from selenium.webdriver.common.by import By
    return drv.find_element(By.ID, "live").text


def test_dashboard_in_chromium(browser, refit_bin, tmp_path, scope, scoped, containers, image_factory,
                               plain_registry):
    from selenium.webdriver.common.by import By
    drv = browser
    repo = image_factory.unique_repo("dash-br")
    v1, v2 = image_factory.make_many([{"registry": plain_registry, "repo": repo, "tag": t}
                                      for t in ("latest", "v2")])
    g1, g2 = stale_pair(image_factory, plain_registry, v1, v2, "dash-br-web")
    web, evil = containers.run_many([
        dict(image=g1, labels=scoped(), hint="dash-br-web"),
        dict(image=v1, labels=scoped({"refit.track": "semver:" + XSS}), hint="dash-br-evil")])
    d = Daemon(refit_bin, str(tmp_path / "daemon"), scope=scope).start()
    try:
        # a wrong token does not log in
        drv.get(d.url + "/")
        drv.find_element(By.ID, "token").send_keys("wrong-" + d.token)
        drv.find_element(By.CSS_SELECTOR, "form.login button").click()
        try:
            wait_for(lambda: drv.find_elements(By.ID, "login-error"), 20, what="the login error")
        except Exception:
            raise AssertionError(drv.current_url + "\n" + drv.page_source[:3000] + d.stderr_text()[-3000:])
        assert "not the API token" in drv.find_element(By.ID, "login-error").text
        assert not drv.find_elements(By.ID, "rows")
        # the right one does
        drv.find_element(By.ID, "token").send_keys(d.token)
        drv.find_element(By.CSS_SELECTOR, "form.login button").click()
        wait_for(lambda: drv.find_elements(By.ID, "rows"), 30, what="the container table")
        assert row(drv, web).get_attribute("data-status") == "update-available"
        assert same_digest(current_digest(drv, web), g1.digest)
        # the label's script is text, never run
        ev = row(drv, evil)
        assert ev.get_attribute("data-status") == "error", ev.text
        assert XSS in ev.text, ev.text
        assert not ev.find_elements(By.TAG_NAME, "script")
        assert _alert(drv) is None
        assert drv.execute_script("return document.scripts.length") == 1  # dashboard.js only
        shot = str(tmp_path / "dashboard.png")
        drv.save_screenshot(shot)
        os.makedirs(os.path.join(ROOT, "build", "screenshots"), exist_ok=True)
        shutil.copy(shot, os.path.join(ROOT, "build", "screenshots", "dashboard.png"))
        # Update: the row shows the new digest without a reload (the event stream)
        drv.execute_script("window.__same_page = 42")
        click_action(drv, web, "update")
        accept_confirm(drv)
        try:
            wait_for(lambda: same_digest(current_digest(drv, web) or "", g2.digest), 90,
                     what="the new digest in the row")
        except Exception:
            raise AssertionError("live: %r\n%s\n%s" % (live_text(drv), drv.get_log("browser"),
                                                         d.stderr_text()[-3000:]))
        assert drv.execute_script("return window.__same_page") == 42, "the page was reloaded"
        wait_for(lambda: row(drv, web).get_attribute("data-status") == "up-to-date", 30,
                 what="the row up to date")
        # Roll back returns it
        wait_for(lambda: row(drv, web).find_elements(By.CSS_SELECTOR, 'button[value^="rollback:"]'), 30,
                 what="the Roll back button")
        click_action(drv, web, "rollback")
        accept_confirm(drv)
        try:
            wait_for(lambda: same_digest(current_digest(drv, web) or "", g1.digest), 90,
                     what="the old digest back in the row")
        except Exception:
            raise AssertionError("rollback: %r\n%s\n%s" % (live_text(drv), drv.get_log("browser"),
                                                             d.stderr_text()[-3000:]))
        assert drv.execute_script("return window.__same_page") == 42
        # the rolled-back digest is held: no Update offered until it is released
        wait_for(lambda: row(drv, web).get_attribute("data-status") == "held", 30,
                 what="the row held after its rollback")
        assert not row(drv, web).find_elements(By.CSS_SELECTOR, 'button[value^="update:"]')
        # Release asks first, then clears the hold: the row is pending again, without a reload
        wait_for(lambda: row(drv, web).find_elements(By.CSS_SELECTOR, 'button[value^="release:"]'), 30,
                 what="the Release button")
        click_action(drv, web, "release")
        accept_confirm(drv)
        wait_for(lambda: row(drv, web).get_attribute("data-status") == "update-available", 30,
                 what="the row pending again once released")
        assert "released " + web in live_text(drv), live_text(drv)
        assert drv.execute_script("return window.__same_page") == 42
        assert not row(drv, web).find_elements(By.CSS_SELECTOR, 'button[value^="release:"]')
        assert [c["status"] for c in d.get_json("/api/v1/containers")["containers"]
                if c["name"].lstrip("/") == web] == ["update-available"]
        # a change without the CSRF token is refused
        st = drv.execute_async_script(
            "var done = arguments[0]; fetch('/ui/action', {method: 'POST', body: new URLSearchParams("
            "{action: 'pause'}), headers: {Accept: 'application/json'}}).then(function (r) { done(r.status); });")
        assert st == 403 and d.get_json("/health")["paused"] is False
        # Pause: Update is refused, and the page says why
        click_action(drv, None, "pause")
        wait_for(lambda: "paused" in drv.find_element(By.ID, "state").text, 30, what="the paused state")
        assert d.get_json("/health")["paused"] is True
        click_action(drv, web, "update")
        accept_confirm(drv)
        wait_for(lambda: "refused" in live_text(drv) and "paused" in live_text(drv), 20,
                 what="the refusal on the page")
        assert same_digest(current_digest(drv, web), g1.digest)
        # at 360 px the table is still there, one card per container
        drv.set_window_size(360, 800)
        assert row(drv, web).is_displayed()
        assert drv.execute_script("return document.documentElement.scrollWidth") <= 400
    finally:
        d.stop()
