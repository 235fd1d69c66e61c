"""The operator page in a real headless Chromium (Debian's chromium + chromedriver), against a
real daemon running on the shipped sample plus one event with a hostile key.

Checks: anomalies, a key's page, an anomaly's detail and the charts render; no console errors;
no request leaves the daemon; a feedback click is refused without the token and stored with
it; the hostile key is shown as text, never as markup. Set STREAMEM_SCREENSHOTS=DIR to keep
screenshots of the overview, the key page and the anomaly detail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sensors.jsonl"
HOSTILE = "<img src=x onerror=alert(1)>"
TOKEN = "ui-test-token"
WAIT = 60.0
RUN: dict[str, Path] = {}  # the running daemon's input file (the daemon fixture's)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("ui")
    events = tmp / "events.jsonl"
    lines = SAMPLE.read_text().splitlines()
    last = json.loads(lines[-1])
    bad = {**last, "ts": last["ts"] + 1, "sensor": HOSTILE, "pressure": 40.0, "flow": 1.0}
    events.write_text("\n".join([*lines, json.dumps(bad)]) + "\n")
    RUN["events"] = events
    port = free_port()
    cfg = yaml.safe_load((REPO / "config.example.yaml").read_text())
    cfg["source"].update(path=str(events), follow=True)
    cfg["sinks"] = [{"type": "file", "path": str(tmp / "anomalies.jsonl")}]
    cfg["dead_letter"] = {"type": "file", "path": str(tmp / "dead.jsonl")}
    cfg["checkpoint"]["dir"] = str(tmp / "state")
    cfg["metrics"].update(port=port)
    cfg["ui"] = {"enabled": True, "token": "${STREAMEM_UI_TOKEN}"}
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamem", "run", "-c", str(tmp / "config.yaml")],
        env={**os.environ, "STREAMEM_UI_TOKEN": TOKEN}, stdout=subprocess.DEVNULL,
        stderr=open(tmp / "daemon.log", "w"))  # noqa: SIM115 - closed with the process
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + WAIT
    while True:
        try:
            if get_json(f"{base}/api/v1/status").get("events_total", 0) >= len(lines) + 1:
                break
        except OSError:
            pass
        assert proc.poll() is None, (tmp / "daemon.log").read_text()
        assert time.monotonic() < deadline, "the daemon did not consume the sample in time"
        time.sleep(0.2)
    yield base
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium = shutil.which("chromium")
    driver_bin = shutil.which("chromedriver")
    assert chromium and driver_bin, "install Debian's chromium and chromium-driver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def loaded(driver: WebDriver, view: str) -> None:
    WebDriverWait(driver, WAIT).until(
        lambda d: d.execute_script("return document.body.dataset.loaded") == view)


def shot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("STREAMEM_SCREENSHOTS")
    if folder:
        driver.save_screenshot(str(Path(folder) / f"ui-{name}.png"))


def requested_urls(driver: WebDriver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def test_overview_key_page_and_anomaly_detail_render(daemon: str, browser: WebDriver) -> None:
    browser.get(f"{daemon}/#/")
    loaded(browser, "overview")
    WebDriverWait(browser, WAIT).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#anomalies tr.link")) >= 9)
    assert browser.find_elements(By.CSS_SELECTOR, "#score-chart svg path")
    assert browser.find_elements(By.CSS_SELECTOR, "#score-chart circle.mark")
    cards = browser.find_element(By.ID, "cards").text
    assert "events/s" in cards and "threshold" in cards and "all delivering" in cards
    # the hostile key is text in a cell, and no <img> was ever created from it
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#anomalies td")]
    assert HOSTILE in cells
    assert browser.find_elements(By.TAG_NAME, "img") == []
    shot(browser, "overview")

    browser.get(f"{daemon}/#/key/pump-1")
    loaded(browser, "key")
    assert browser.find_element(By.ID, "key-title").text == "Key pump-1"
    WebDriverWait(browser, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#key-chart svg circle.dot"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#key-anomalies tr.link")
    assert rows and all("pump-1" in r.text for r in rows)
    shot(browser, "key")

    browser.get(f"{daemon}/#/model")
    loaded(browser, "model")
    assert browser.find_elements(By.CSS_SELECTOR, "#weights-chart svg path")

    browser.get(f"{daemon}/#/")
    loaded(browser, "overview")
    browser.find_element(By.CSS_SELECTOR, "#anomalies tr.link").click()
    loaded(browser, "anomaly")
    WebDriverWait(browser, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#anomaly-bars .bar"))
    assert "z =" in browser.find_element(By.ID, "anomaly-bars").text
    shot(browser, "anomaly")

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    outside = [u for u in requested_urls(browser) if not u.startswith(daemon)]
    assert outside == []


def test_feedback_click_is_refused_without_token_and_stored_with_it(
        daemon: str, browser: WebDriver) -> None:
    anomaly = get_json(f"{daemon}/api/v1/anomalies?limit=1")["anomalies"][0]
    browser.get(f"{daemon}/#/anomaly/" + urllib.request.quote(anomaly["id"], safe=""))
    loaded(browser, "anomaly")
    result = browser.find_element(By.ID, "fb-result")
    browser.find_element(By.ID, "fb-fp").click()
    WebDriverWait(browser, WAIT).until(lambda d: result.text.startswith("refused"))
    assert get_json(f"{daemon}/api/v1/model")["verdicts"]["false_positive"] == 0

    token = browser.find_element(By.ID, "token")
    token.send_keys(TOKEN)
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", token)
    browser.find_element(By.ID, "fb-fp").click()
    WebDriverWait(browser, WAIT).until(lambda d: result.text.startswith("stored"))
    assert get_json(f"{daemon}/api/v1/anomalies/" + urllib.request.quote(
        anomaly["id"], safe=""))["verdict"] == "false_positive"
    with urllib.request.urlopen(f"{daemon}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert 'streamem_feedback_total{verdict="false_positive"} 1.0' in text


def test_feedback_command_talks_to_the_running_daemon(daemon: str) -> None:
    anomaly = get_json(f"{daemon}/api/v1/anomalies?limit=3")["anomalies"][-1]
    base = [sys.executable, "-m", "streamem", "feedback", anomaly["id"], "--url", daemon]
    env = {k: v for k, v in os.environ.items() if k != "STREAMEM_UI_TOKEN"}
    missing = subprocess.run([*base, "--verdict", "true_positive"], capture_output=True,
                             text=True, env=env, timeout=60)
    assert missing.returncode == 2 and "STREAMEM_UI_TOKEN" in missing.stderr
    wrong = subprocess.run([*base, "--verdict", "true_positive"], capture_output=True, text=True,
                           env={**env, "STREAMEM_UI_TOKEN": "nope"}, timeout=60)
    assert wrong.returncode == 1 and "401" in wrong.stderr
    ok = subprocess.run([*base, "--verdict", "true_positive", "--note", "pump seized"],
                        capture_output=True, text=True, timeout=60,
                        env={**env, "STREAMEM_UI_TOKEN": TOKEN})
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["note"] == "pump seized"
    assert get_json(f"{daemon}/api/v1/model")["verdicts"]["true_positive"] == 1


def test_a_new_anomaly_appears_without_reload(daemon: str, browser: WebDriver) -> None:
    browser.get(f"{daemon}/#/")
    loaded(browser, "overview")
    browser.execute_script("window.notReloaded = true")  # a reload would drop it
    last = json.loads(SAMPLE.read_text().splitlines()[-1])
    # not the pattern of the hostile event: the feedback test declared that one normal
    live = {**last, "ts": last["ts"] + 5, "sensor": "live-key-7", "temperature": 200.0}
    with RUN["events"].open("a") as fh:  # the daemon follows the file
        fh.write(json.dumps(live) + "\n")
    cells = "return [...document.querySelectorAll('#anomalies td')].map(c => c.textContent)"
    # read in one script: the table is re-rendered on every poll (elements go stale)
    WebDriverWait(browser, WAIT).until(lambda d: "live-key-7" in d.execute_script(cells))
    assert browser.execute_script("return window.notReloaded") is True
    # the false positive of the feedback test was learned before this event's batch
    WebDriverWait(browser, WAIT).until(
        lambda d: "1 learned" in d.execute_script("return document.getElementById('cards')"
                                                  ".textContent"))
    shot(browser, "overview")
