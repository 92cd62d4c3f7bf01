"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium 4, screenshots on disk.

Selenium is given the system chromedriver and browser explicitly, so Selenium Manager never runs (it would try to
download a driver). The browser itself is kept on loopback: every host name except 127.0.0.1 fails to resolve.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install chromium chromium-driver"
WINDOW = (1400, 1000)
PAGE_TIMEOUT_S = 60.0
WAIT_TIMEOUT_S = 45.0

T = TypeVar("T")


def missing_parts() -> list[str]:
    return [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]


def chromium_options() -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--metrics-recording-only",
        # The loopback guard of the test suite, for the browser process too.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--proxy-server=direct://",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    return options


@dataclass
class Browser:
    """One headless Chromium session. ``shot(name)`` saves ``<folder>/<name>.png`` and returns its path."""

    driver: webdriver.Chrome
    folder: Path
    shots: list[Path] = field(default_factory=list)

    def open(self, url: str) -> None:
        self.driver.get(url)

    def shot(self, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        if not self.driver.save_screenshot(str(path)):
            raise AssertionError(f"screenshot {path} was not written")
        self.shots.append(path)
        return path

    def text(self) -> str:
        """What the page shows as text (``innerText`` of the body: hidden elements excluded)."""
        return str(self.driver.execute_script("return document.body ? document.body.innerText : ''"))

    def run(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, condition: Callable[[Browser], T], *, timeout: float = WAIT_TIMEOUT_S, what: str = "") -> T:
        """Polls ``condition(self)`` until it returns something truthy; on timeout saves a screenshot and fails."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(lambda _d: condition(self))
        except TimeoutException:
            shot = self.shot(f"timeout-{len(self.shots)}")
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what or condition!r} at {self.driver.current_url}; "
                f"screenshot {shot}; page text: {self.text()[:1500]!r}"
            ) from None

    def wait_for_text(self, *needles: str, timeout: float = WAIT_TIMEOUT_S) -> str:
        """Waits until every needle is in the page text; returns that text."""

        def shown(b: Browser) -> str:
            text = b.text()
            return text if all(n in text for n in needles) else ""

        return self.wait(shown, timeout=timeout, what=f"text {needles!r}")

    def images(self) -> list[dict[str, Any]]:
        """Every ``<img>`` on the page: its ``alt``, its ``src`` attribute as the page has it (first 120
        characters; the UI may have emptied it), whether it finished loading, and its natural width (0 for an image
        the browser could not load) and shown width."""
        return list(
            self.run(
                "return Array.from(document.images).map(i => ({alt: i.alt,"
                " src: (i.getAttribute('src') || '').slice(0, 120), complete: i.complete,"
                " naturalWidth: i.naturalWidth, width: i.width}));"
            )
        )

    def elements(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))


def start_chromium(folder: Path, log: Path) -> Browser:
    log.parent.mkdir(parents=True, exist_ok=True)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log))
    driver = webdriver.Chrome(service=service, options=chromium_options())
    try:
        driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        driver.set_script_timeout(PAGE_TIMEOUT_S)
        # --window-size counts the (invisible) browser frame: make the page itself WINDOW large.
        frame_w, frame_h = driver.execute_script(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]"
        )
        driver.set_window_size(WINDOW[0] + int(frame_w), WINDOW[1] + int(frame_h))
    except BaseException:
        driver.quit()
        raise
    return Browser(driver=driver, folder=folder)
