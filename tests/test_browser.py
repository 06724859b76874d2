"""The product in a real browser: headless Chromium (Debian's, through Selenium) against the app started with the
README's command. It makes a demo dataset on the Data page, trains a tiny run from the Train page, watches it
finish and finds its WER on Compare. Screenshots of each page land in test-artifacts/."""

import json
import os
import shutil
import socket
import subprocess
import time

import pytest
from conftest import REPO
from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

ARTIFACTS = REPO / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, session_workspace, demo_artifact):
    home = tmp_path_factory.mktemp("browser") / "ws"
    shutil.copytree(session_workspace.models, home / "models")  # the demo model, built once per session
    port = free_port()
    env = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_PORT": str(port)}
    server = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "run.sh")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("the app did not start: " + server.stdout.read().decode()[-2000:])
    yield f"http://127.0.0.1:{port}", home
    os.killpg(server.pid, 15)
    server.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def wait_for_text(driver, text: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in driver.find_element(By.TAG_NAME, "body").text:
            return
        time.sleep(0.5)
    shot(driver, "timeout")
    raise AssertionError(f"'{text}' never appeared; page text: {driver.find_element(By.TAG_NAME, 'body').text[:1500]}")


def click(driver, xpath: str, timeout: float = 30) -> None:
    """Click once the element exists: Streamlit draws a page in several passes."""
    deadline = time.time() + timeout
    while True:
        try:
            driver.find_element(By.XPATH, xpath).click()
            return
        except (NoSuchElementException, ElementClickInterceptedException, StaleElementReferenceException):
            if time.time() > deadline:
                shot(driver, "timeout")
                raise
            time.sleep(0.3)


def click_button(driver, label: str) -> None:
    click(driver, f"//button[.//p[normalize-space()='{label}']]")


def set_number(driver, label: str, value: int) -> None:
    field = driver.find_element(By.XPATH, f"//input[@aria-label='{label}']")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value), Keys.ENTER)
    time.sleep(0.5)


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_data_train_compare_in_the_browser(app_url, browser):
    url, home = app_url
    browser.get(url)
    wait_for_text(browser, "Generate with espeak-ng")
    assert "Run the offline demo" in browser.find_element(By.TAG_NAME, "body").text
    set_number(browser, "Utterances", 60)
    click_button(browser, "Generate with espeak-ng")
    wait_for_text(browser, "Ready:")
    click(browser, "//*[@role='tab' and contains(., 'Prepare features')]")
    click_button(browser, "Prepare features")
    wait_for_text(browser, "Prepared nb-synthetic", timeout=120)
    shot(browser, "data")

    browser.get(f"{url}/train")
    wait_for_text(browser, "Start training")
    for label, value in (("max steps", 12), ("eval steps", 6), ("save steps", 6), ("warmup steps", 2)):
        set_number(browser, label, value)
    click_button(browser, "Start training")
    wait_for_text(browser, "Started nb-synthetic-1")
    wait_for_text(browser, "step", timeout=30)
    wait_for_text(browser, "completed · step 12/12", timeout=240)
    shot(browser, "train")
    assert (home / "runs" / "nb-synthetic-1" / "best.json").is_file()

    browser.get(f"{url}/compare")
    wait_for_text(browser, "WER over training steps")
    wait_for_text(browser, "nb-synthetic-1")
    wait_for_text(browser, "completed")
    best = json.loads((home / "runs" / "nb-synthetic-1" / "best.json").read_text())
    wait_for_text(browser, f"{100 * best['wer']:.1f}%")  # the run's best WER, as the Compare page prints it
    shot(browser, "compare")
