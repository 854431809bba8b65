#!/usr/bin/env python3
"""Drives Debian's Chromium over WebDriver (chromedriver, selenium) through resetgate's reset
page, for tests/browser.rs.

    browser.py --base URL --email ADDR --password PW --axe AXE_JS --shots DIR [--no-js] [--lang L]
    browser.py --link URL --axe AXE_JS --shots DIR
    browser.py --base URL --email ADDR --expired --axe AXE_JS --shots DIR

Full flow: types the address, prints "NEED_CODE" and reads the code from stdin (the test
takes it from the delivered mail); submits a wrong code, then the code; a too-common
password, then two different ones, then the password; and at the end asks for another code
within the resend cooldown (429). Each refusal must show its sentence, take the focus
where it is about a field, and keep the address. On each step axe-core runs (WCAG 2.x A
and AA, in the runs with JavaScript on) and must report no violation; screenshots at 320
and 1280 px wide are written to the shots directory. With --link it opens the mail's link and checks that the
page landed on the code step with the code filled in and the fragment gone. With --expired
it asks for a code, prints "NEED_EXPIRED_CODE", reads a code the test has let expire, and
checks the wrong-or-expired sentence, the focus and the kept address. Prints "OK" at
the end; any failure raises (exit status 1).
"""
import argparse
import contextlib
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait


# The start of the too-common password's sentence and of the 429's, per language.
REFUSALS = {
    "en": ("This password is too common.", "Too many attempts. Try again in "),
    "de": ("Dieses Passwort ist zu verbreitet.", "Zu viele Versuche. Versuchen Sie es in "),
    "fr": ("Ce mot de passe est trop courant.", "Trop de tentatives. Réessayez dans "),
}

# What each step says, per language: the title, the wrong code's sentence (a part), the
# mismatch's sentence, the start of the last page's sentence.
EXPECT = {
    "en": ("Reset your password", "wrong or has expired", "The two passwords do not match.",
           "Your password was changed"),
    "de": ("Passwort zurücksetzen", "falsch oder abgelaufen",
           "Die beiden Passwörter stimmen nicht überein.", "Ihr Passwort wurde geändert"),
    "fr": ("Réinitialiser votre mot de passe", "faux ou a expiré",
           "Les deux mots de passe ne correspondent pas.", "Votre mot de passe a été modifié"),
}


def driver(javascript, lang="en"):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(arg)
    prefs = {"intl.accept_languages": lang}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def again_on_driver_race(act, attempts=3):
    """Runs `act`; when chromedriver reports that an element it just found "does not belong
    to the document" (a race inside the driver right after a page load, seen once in about
    thirty runs), finds the elements again and repeats: the refused action did nothing."""
    for attempt in range(attempts):
        try:
            return act()
        except WebDriverException as e:
            if "does not belong to the document" not in str(e) or attempt == attempts - 1:
                raise


class Page:
    def __init__(self, browser, axe, shots, label):
        self.b, self.axe, self.shots, self.label = browser, axe, shots, label

    def check(self, step):
        """axe-core on the page as it is (in the runs with JavaScript on: with it off for
        the page, axe's asynchronous run never completes, and the runs with it on check the
        same server-rendered pages), and the two screenshots."""
        if self.axe is not None:
            self.run_axe(step)
        for width in (320, 1280):
            self.b.set_window_size(width, 900)
            self.b.save_screenshot(f"{self.shots}/{self.label}-{step}-{width}.png")
        self.b.set_window_size(1280, 900)

    def run_axe(self, step):
        # WebDriver's scripts are not subject to the page's CSP.
        result = self.b.execute_async_script(
            self.axe
            + "\nvar done = arguments[arguments.length - 1];"
            + "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"
            + ".then(function (r) { done(JSON.stringify(r.violations)); });"
        )
        violations = json.loads(result)
        if violations:
            raise AssertionError(f"axe-core, {step}: " + json.dumps(violations, indent=1)[:4000])

    def type_into(self, name, text):
        def act():
            field = self.b.find_element(By.NAME, name)
            field.clear()
            field.send_keys(text)

        again_on_driver_race(act)

    def submit(self):
        """Submits the form and waits until the answer's page has replaced this one."""
        def act():
            old = self.b.find_element(By.TAG_NAME, "html")
            self.b.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            return old

        old = again_on_driver_race(act)
        WebDriverWait(self.b, 30).until(expected_conditions.staleness_of(old))
        # The new document may still be loading: wait until it has (WebDriver's own
        # scripts run even where the page's are off).
        WebDriverWait(self.b, 30).until(
            lambda b: b.execute_script("return document.readyState") == "complete"
        )

    def error(self, field):
        found = self.b.find_elements(By.ID, f"{field}-error")
        assert found, f"no sentence for {field}: " + self.b.page_source[:3000]
        return found[0].text

    def focused(self):
        return self.b.switch_to.active_element.get_attribute("name")


@contextlib.contextmanager
def browsing(args, label, javascript=True, lang="en"):
    """A browser and its Page for one flow; quits it afterwards, and prints "OK" when the
    flow ran through."""
    b = driver(javascript, lang)
    b.set_script_timeout(30)
    axe = open(args.axe).read() if javascript else None
    try:
        yield b, Page(b, axe, args.shots, label)
    finally:
        b.quit()
    print("OK", flush=True)


def full_flow(args):
    title, wrong_code, mismatch, done_start = EXPECT[args.lang]
    label = ("nojs" if args.no_js else "js") + "-" + args.lang
    with browsing(args, label, not args.no_js, args.lang) as (b, page):
        b.get(args.base + "/reset")
        assert b.find_element(By.TAG_NAME, "h1").text == title
        assert b.find_element(By.TAG_NAME, "html").get_attribute("lang") == args.lang
        page.check("1-email")
        page.type_into("email", args.email)
        page.submit()
        assert args.email in b.find_element(By.CSS_SELECTOR, "p[role=status]").text
        page.check("2-code")
        print("NEED_CODE", flush=True)
        code = sys.stdin.readline().strip()

        page.type_into("code", "000000000000")
        page.submit()
        assert wrong_code in page.error("code"), b.page_source
        assert page.focused() == "code", "focus goes to the field in error"
        assert b.find_element(By.NAME, "email").get_attribute("value") == args.email
        page.type_into("code", code)
        page.submit()
        page.check("3-password")

        too_common, too_many = REFUSALS[args.lang]
        page.type_into("password", "abcdefghijklmnop")
        page.type_into("password2", "abcdefghijklmnop")
        page.submit()
        assert page.error("password").startswith(too_common), page.error("password")
        assert page.focused() == "password"
        page.type_into("password", args.password)
        page.type_into("password2", args.password + "!")
        page.submit()
        assert page.error("password2") == mismatch
        assert page.focused() == "password2"
        page.check("3-password-mismatch")
        page.type_into("password", args.password)
        page.type_into("password2", args.password)
        page.submit()
        done = b.find_element(By.CSS_SELECTOR, "p.done").text
        assert done.startswith(done_start), done
        page.check("4-done")
        assert not b.get_cookies(), "the page sets no cookie"

        # Another code for the same address within the resend cooldown: 429, said in words,
        # the address kept.
        b.get(args.base + "/reset")
        page.type_into("email", args.email)
        page.submit()
        refusal = b.find_element(By.CSS_SELECTOR, "form p.error[role=alert]").text
        assert refusal.startswith(too_many), refusal
        assert b.find_element(By.NAME, "email").get_attribute("value") == args.email
        page.check("1-email-429")


def link_flow(args):
    with browsing(args, "link") as (b, page):
        b.get(args.link)
        code = args.link.split("#code=", 1)[1]
        field = b.find_element(By.NAME, "code")
        assert b.current_url.split("#")[0].endswith("/reset/code"), b.current_url
        assert field.get_attribute("value") == code, "the code is filled in"
        assert "#" not in b.current_url, "the fragment is gone: " + b.current_url
        page.check("2-code-from-link")


def expired_flow(args):
    with browsing(args, "expired") as (b, page):
        b.get(args.base + "/reset")
        page.type_into("email", args.email)
        page.submit()
        print("NEED_EXPIRED_CODE", flush=True)
        code = sys.stdin.readline().strip()
        page.type_into("code", code)
        page.submit()
        assert EXPECT["en"][1] in page.error("code"), b.page_source
        assert page.focused() == "code", "focus goes to the field in error"
        assert b.find_element(By.NAME, "email").get_attribute("value") == args.email
        page.check("2-code-expired")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base")
    parser.add_argument("--email")
    parser.add_argument("--password")
    parser.add_argument("--link")
    parser.add_argument("--axe", required=True)
    parser.add_argument("--shots", required=True)
    parser.add_argument("--no-js", action="store_true")
    parser.add_argument("--expired", action="store_true")
    parser.add_argument("--lang", default="en", choices=sorted(EXPECT))
    args = parser.parse_args()
    if args.link:
        link_flow(args)
    elif args.expired:
        expired_flow(args)
    else:
        full_flow(args)


if __name__ == "__main__":
    main()
