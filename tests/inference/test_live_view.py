"""The browser live view in a real headless Chromium (Debian's chromium + chromium-driver, Selenium):
frames arrive and are drawn, the canvas changes, audio is scheduled with each frame, from an audio
file and from a (fake) microphone; the token never lands in a URL. A screenshot is kept under
reports/ (a CI artefact)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from ops.acceptance.assets import FACE_PNG, SPEECH_WAV
from tests.inference.conftest import REPO, TOKEN, RunningServer

SCREENSHOT = REPO / "reports" / "live-view.png"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def live_server(server_factory) -> RunningServer:
    return server_factory({"FLASHHEAD_LIVE_VIEW": "1", "FLASHHEAD_REFERENCE_CHUNK_MS": "50"}, token=TOKEN)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never looks online: the driver is given
    options = Options()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,800",
                     "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={SPEECH_WAV}", "--autoplay-policy=no-user-gesture-required",
                     f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def _stats(driver: webdriver.Chrome) -> dict:
    return dict(driver.execute_script("return window.flashheadLive.stats"))


def _canvas_digest(driver: webdriver.Chrome) -> str:
    data = driver.execute_script("return document.getElementById('view').toDataURL('image/png')")
    return hashlib.sha256(base64.b64decode(data.split(",", 1)[1])).hexdigest()


def _wait(driver: webdriver.Chrome, condition, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = _stats(driver)
        assert not stats["errors"], stats["errors"]
        if condition(stats):
            return stats
        time.sleep(0.1)
    raise AssertionError(f"the live view did not get there: {_stats(driver)}")


def _open(driver: webdriver.Chrome, server: RunningServer) -> None:
    driver.get(server.url + "/live")
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.ID, "photo").send_keys(str(FACE_PNG))


def _urls(driver: webdriver.Chrome) -> list[str]:
    import json

    entries = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    return [entry["params"].get("request", {}).get("url") or entry["params"].get("url", "")
            for entry in entries if entry["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated")]


def test_an_audio_file_plays_with_the_avatar_in_sync(live_server: RunningServer, browser: webdriver.Chrome) -> None:
    _open(browser, live_server)
    blank = _canvas_digest(browser)
    browser.find_element(By.ID, "audio").send_keys(str(SPEECH_WAV))
    browser.find_element(By.ID, "play-file").click()
    stats = _wait(browser, lambda s: s["framesDrawn"] >= 40)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))  # mid-speech
    first = _canvas_digest(browser)
    time.sleep(0.6)
    assert _canvas_digest(browser) != first != blank  # frames are drawn, and the face moves
    # Each frame brought its own audio: what is scheduled is what was sent, frame by frame.
    stats = _wait(browser, lambda s: s["segments"] == 1 and s["framesDrawn"] == s["framesReceived"], timeout=120)
    assert stats["audioSamplesScheduled"] == stats["audioSamplesSent"] > 0
    rate = browser.execute_script("return window.flashheadLive.session.context.sampleRate")
    assert abs(stats["framesReceived"] - stats["audioSamplesSent"] * 25 / rate) < 1
    running = browser.execute_script("return window.flashheadLive.session.context.state")
    assert running == "running"
    # Drawn by the audio clock: never before its own audio starts (a frame drawn on arrival would be up to
    # the 150 ms lead early; the page draws within 5 ms of its audio, also when a busy machine delays the
    # audio clock behind its timers). How late depends on the timer.
    assert stats["minDrawOffsetMs"] > -6, stats
    print(f"live view: {stats['framesDrawn']} frames drawn {stats['minDrawOffsetMs']:.1f} to "
          f"{stats['maxDrawOffsetMs']:.1f} ms after their audio started")
    urls = _urls(browser)
    assert any(url.endswith("/v1/stream") for url in urls) and any(url.endswith("/v1/avatars") for url in urls)
    assert not [url for url in urls if TOKEN in url]


def test_the_microphone_drives_the_avatar(live_server: RunningServer, browser: webdriver.Chrome) -> None:
    _open(browser, live_server)
    browser.find_element(By.ID, "microphone").click()
    stats = _wait(browser, lambda s: s["framesDrawn"] >= 30 and s["audioSamplesScheduled"] > 0)
    first = _canvas_digest(browser)
    time.sleep(1.0)
    assert _canvas_digest(browser) != first
    browser.find_element(By.ID, "stop").click()
    assert stats["audioSamplesSent"] > 0


def test_the_live_view_is_off_unless_turned_on(server: RunningServer) -> None:
    assert httpx.get(server.url + "/live").status_code == 404
    assert httpx.get(server.url + "/live/live.js").status_code == 404


def test_the_page_needs_no_token_and_holds_none(live_server: RunningServer) -> None:
    page = httpx.get(live_server.url + "/live")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert TOKEN not in page.text
    assert httpx.get(live_server.url + "/live/other.js").status_code == 404
    assert httpx.get(live_server.url + "/v1/info").status_code == 401  # the API still needs it
