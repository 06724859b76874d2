"""The product in a real browser: headless Chromium (Debian's, through Selenium) against the app started with the
README's command. It makes a demo dataset on the Data page, trains a tiny run from the Train page, watches it
finish and finds its WER on Compare. Screenshots of each page land in test-artifacts/."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import REPO, chromium
from llm_standin import StandIn
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from core.audio import load_audio
from core.training import live_run
from core.workspace import Workspace

pytestmark = pytest.mark.browser  # Chromium against the running app

ARTIFACTS = REPO / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def standin():
    server = StandIn().start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, session_workspace, demo_artifact, standin):
    home = tmp_path_factory.mktemp("browser") / "ws"
    shutil.copytree(session_workspace.models, home / "models", copy_function=os.link)  # built once per session
    port = free_port()
    env = {
        **os.environ,
        "STUDIO_HOME": str(home),
        "STUDIO_PORT": str(port),
        "OPENAI_BASE_URL": standin.base_url,
        "OPENAI_MODEL": "echo",
    }
    env.pop("OPENAI_API_KEY", None)
    # the server's output goes to a file: a pipe nobody reads fills up (64 KiB), and then every thread of the
    # server that logs (aiortc's, the audio callback's) blocks on its next write
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "app-server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            ["bash", str(REPO / "scripts" / "run.sh")],
            cwd=REPO,
            env=env,
            stdout=log,
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
        pytest.fail("the app did not start: " + log_path.read_text(errors="replace")[-2000:])
    yield f"http://127.0.0.1:{port}", home
    os.killpg(server.pid, 15)
    server.wait(timeout=20)
    live = live_run(Workspace(home))  # a run a failed test left training outlives the app: end it too
    if live and live.status().pid:
        os.kill(live.status().pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def microphone_file(tmp_path_factory) -> Path:
    """What the fake microphone says: espeak-ng speech between seconds of silence, 48 kHz like a real one."""
    folder = tmp_path_factory.mktemp("mic")
    subprocess.run(["espeak-ng", "-v", "nb", "-w", str(folder / "speech.wav"), "god morgen, en to tre"], check=True)
    speech = load_audio(folder / "speech.wav", sample_rate=48000)
    silence = np.zeros(48000, np.float32)
    sf.write(folder / "mic.wav", np.concatenate([silence, speech, silence, silence]), 48000, subtype="PCM_16")
    return folder / "mic.wav"


@pytest.fixture(scope="module")
def browser(microphone_file):
    # where loopback is the only interface (CI's sandbox), WebRTC can connect only over loopback
    driver = chromium(microphone_file, "--allow-loopback-in-peer-connection")
    yield driver
    driver.quit()


def wait_for_text(driver, text: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in driver.find_element(By.TAG_NAME, "body").text:
            return
        time.sleep(0.5)
    shot(driver, "timeout")
    server_log = ARTIFACTS / "app-server.log"
    tail = server_log.read_text(errors="replace")[-3000:] if server_log.is_file() else ""
    raise AssertionError(
        f"'{text}' never appeared; page text: {driver.find_element(By.TAG_NAME, 'body').text[:1500]}\n"
        f"app server log (end): {tail}"
    )


def find(driver, xpath: str, timeout: float = 30):
    """The element once it exists: Streamlit draws a page in several passes."""
    deadline = time.time() + timeout
    while True:
        found = driver.find_elements(By.XPATH, xpath)
        if found:
            return found[0]
        if time.time() > deadline:
            shot(driver, "timeout")
            raise NoSuchElementException(xpath)
        time.sleep(0.3)


def click(driver, xpath: str, timeout: float = 30) -> None:
    """Click once the element exists and takes the click."""
    deadline = time.time() + timeout
    while True:
        try:
            find(driver, xpath, timeout).click()
            return
        except (NoSuchElementException, ElementClickInterceptedException, StaleElementReferenceException):
            if time.time() > deadline:
                shot(driver, "timeout")
                raise
            time.sleep(0.3)


def click_button(driver, label: str) -> None:
    click(driver, f"//button[.//p[normalize-space()='{label}']]")


def choose(driver, label: str, option_prefix: str) -> None:
    """Pick the option starting with `option_prefix` in the selectbox labelled `label`."""
    click(driver, f"//input[@role='combobox' and @aria-label='{label}']")
    click(driver, f"//*[@role='option' and starts-with(normalize-space(), '{option_prefix}')]")
    time.sleep(0.5)


def set_number(driver, label: str, value: int, timeout: float = 30) -> None:
    """Type `value` into the number field labelled `label`, again if a rerun redrew the field meanwhile."""
    xpath = f"//input[@aria-label='{label}']"
    deadline = time.time() + timeout
    while True:
        try:
            field = find(driver, xpath, timeout)
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(str(value), Keys.TAB)  # Enter would submit a form with the values typed so far
            time.sleep(0.5)
            if find(driver, xpath, timeout).get_attribute("value") == str(value):
                return
        except StaleElementReferenceException:
            pass
        if time.time() > deadline:
            page = driver.find_element(By.TAG_NAME, "body").text[:1500]
            raise AssertionError(f"could not set '{label}' to {value}; page text: {page}")


FORBIDDEN = re.compile(r"\bnan\b|\bNone\b|DeltaGenerator|Traceback|\x1b")  # what no page may ever show


def assert_clean(driver) -> None:
    """No page shows Python's internals: nan, None, a DeltaGenerator's repr, a traceback, a terminal escape."""
    text = driver.find_element(By.TAG_NAME, "body").text
    found = FORBIDDEN.search(text)
    assert not found, f"the page shows {found.group()!r}: …{text[max(0, found.start() - 200) : found.end() + 200]}…"


def upload(driver, path: Path, nth: int = 0) -> None:
    """Give a Streamlit file uploader (or audio input) a file, as choosing it in the file dialog does."""
    inputs = []
    deadline = time.time() + 30
    while len(inputs) <= nth and time.time() < deadline:
        inputs = driver.find_elements(By.XPATH, "//input[@type='file']")
        time.sleep(0.3)
    inputs[nth].send_keys(str(path))


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_data_train_compare_in_the_browser(app_url, browser):
    url, home = app_url
    browser.get(url)
    wait_for_text(browser, "Generate with espeak-ng")
    assert "Run the offline demo" in browser.find_element(By.TAG_NAME, "body").text
    choose(browser, "Base model you will train", "demo")
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
    assert_clean(browser)


def test_a_second_run_is_followed_stopped_compared_and_its_audio_transcribed(app_url, browser, microphone_file):
    url, home = app_url
    assert (home / "runs" / "nb-synthetic-1" / "best.json").is_file(), "needs the run trained by the test above"
    browser.get(f"{url}/train")
    click(browser, "//summary[.//p[normalize-space()='New run']]")  # folded once a run exists
    wait_for_text(browser, "Start training")
    for label, value in (("max steps", 3000), ("eval steps", 1000), ("save steps", 1000), ("warmup steps", 5)):
        set_number(browser, label, value)
    click_button(browser, "Start training")
    wait_for_text(browser, "Started nb-synthetic-2")
    wait_for_text(browser, "running · step", timeout=120)  # the live view shows the run just started
    picker = find(browser, "//div[@data-testid='stSelectbox' and .//label[normalize-space()='Run']]")
    assert "nb-synthetic-2" in picker.get_attribute("innerHTML")  # the picker shows the run just started
    assert_clean(browser)
    click_button(browser, "Stop")
    wait_for_text(browser, "stopped · step", timeout=120)
    shot(browser, "train-stopped")
    assert "ETA" not in find(browser, "//*[contains(., 'stopped · step')]").text.split("stopped · step")[-1][:40]
    assert_clean(browser)

    browser.get(f"{url}/compare")
    wait_for_text(browser, "Config diff")
    wait_for_text(browser, "warmup_steps")  # the two runs differ there (and in their steps), nowhere else
    shot(browser, "compare-diff")
    assert_clean(browser)

    browser.get(f"{url}/transcribe")
    wait_for_text(browser, "Audio file")
    upload(browser, microphone_file)
    wait_for_text(browser, "Download the transcript as", timeout=120)
    click_button(browser, "TXT")  # a download reruns the page: the transcript is shown again, not made again
    time.sleep(2)
    wait_for_text(browser, "Download the transcript as")
    assert "Transcribing" not in browser.find_element(By.TAG_NAME, "body").text
    shot(browser, "transcribe")
    assert_clean(browser)


def test_live_microphone_and_conversation_in_the_browser(app_url, browser, standin, microphone_file):
    url, home = app_url
    assert (home / "runs" / "nb-synthetic-1" / "best.json").is_file(), "needs the run trained by the test above"
    browser.get(f"{url}/transcribe")
    wait_for_text(browser, "Live microphone")
    click(browser, "//*[@role='tab' and contains(., 'Live microphone')]")
    wait_for_text(browser, "level")
    frame = find(browser, "//iframe[contains(@title, 'webrtc')]")
    browser.switch_to.frame(frame)
    # the label is "Start" in the DOM; CSS shows it in capitals
    click(browser, "//button[translate(normalize-space(), 'start', 'START')='START']")
    browser.switch_to.default_content()
    wait_for_text(browser, "after speech ended", timeout=60)  # a final utterance from the default model (whisper-base)
    shot(browser, "live")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "dBFS" in body and "final text" in body  # the level meter and a finished utterance with its latency
    # a machine with only loopback is told why a browser that does not allow it cannot connect
    loopback_only = all(name == "lo" for _, name in socket.if_nameindex())
    assert ("no network interface besides loopback" in body) == loopback_only

    browser.get(f"{url}/conversation")  # conversation mode has its own page
    wait_for_text(browser, "Clear conversation")
    click(browser, "//button[.//p[normalize-space()='Type']]")
    box = find(browser, "//textarea[@data-testid='stChatInputTextArea']")
    box.send_keys("hei på deg", Keys.ENTER)
    wait_for_text(browser, "You said: hei på deg (turn 1)")
    box = find(browser, "//textarea[@data-testid='stChatInputTextArea']")
    box.send_keys("takk", Keys.ENTER)
    wait_for_text(browser, "You said: takk (turn 2)")
    assert standin.requests[-1]["body"]["messages"][-1] == {"role": "user", "content": "takk"}
    click(browser, "//button[.//p[normalize-space()='Upload a clip']]")
    wait_for_text(browser, "A spoken clip")
    upload(browser, microphone_file)
    wait_for_text(browser, "Transcript (edit before sending)", timeout=120)
    click_button(browser, "Send")
    wait_for_text(browser, "(turn 3)", timeout=60)  # the spoken turn went to the LLM with the two before it
    shot(browser, "conversation")
    assert_clean(browser)
