"""The product in a real browser: headless Chromium (Debian's, through Selenium) against the app started with the
README's command, walked as a user would. It makes a demo dataset on the Data page (word lists that fit the toy's
window), trains a tiny run from the Train page (Enter starts nothing, Start warns first, Preview stays in view),
follows, stops and resumes a second one (the view, the sidebar and the ETA follow it), transcribes its audio (the
workspace's language, an unsure detection said in words, the correction box and timed words true to the text shown),
and talks to a local LLM (a failed reply stays in place with Retry). Every test waits on the page's state, never on
a fixed sleep. Screenshots of each page land in test-artifacts/."""

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
from helpers import REPO, chromium, stop_leftover_training
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


@pytest.fixture(autouse=True)
def no_run_outlives_its_test():
    """The journey's tests share one app: a run a failed test left training would starve the next one's page."""
    yield
    stop_leftover_training()


@pytest.fixture(scope="module")
def browser(microphone_file):
    # where loopback is the only interface (CI's sandbox), WebRTC can connect only over loopback
    driver = chromium(microphone_file, "--allow-loopback-in-peer-connection")
    yield driver
    driver.quit()


def body_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text  # what is visible: folded panels' text is not


def wait_until(driver, condition, what: str, timeout: float = 60):
    """Poll `condition()` until it returns something truthy (returned), or fail with what never happened. The
    polling interval is no wait for the app: every check looks at the page's state."""
    deadline = time.time() + timeout
    while True:
        try:
            found = condition()
        except (NoSuchElementException, StaleElementReferenceException, IndexError):  # not drawn (yet, again)
            found = None
        if found:
            return found
        if time.time() > deadline:
            shot(driver, "timeout")
            # the log of the app this test drives: the one written last (each module starts its own app)
            logs = sorted(ARTIFACTS.glob("app-server*.log"), key=lambda p: p.stat().st_mtime)
            tail = logs[-1].read_text(errors="replace")[-3000:] if logs else ""
            entries = [f"{e['timestamp']} {e['level']} {e['message'][:400]}" for e in driver.get_log("browser")]
            (ARTIFACTS / "browser-console.log").write_text("\n".join(entries) + "\n")  # the whole page's story
            console = "\n".join(dict.fromkeys(e.split(" ", 1)[1] for e in entries[-40:]))  # the end, repeats once
            raise AssertionError(
                f"{what} never happened; page text: {body_text(driver)[:1500]}\napp log (end): {tail}\n"
                f"browser console (end): {console}\n(so: {what} never happened)"  # once more where a cut log ends
            )
        time.sleep(0.3)


def wait_for_text(driver, text: str, timeout: float = 60) -> None:
    wait_until(driver, lambda: text in body_text(driver), f"'{text}' shown", timeout)


def wait_until_gone(driver, text: str, timeout: float = 60) -> None:
    wait_until(driver, lambda: text not in body_text(driver), f"'{text}' gone", timeout)


def find(driver, xpath: str, timeout: float = 30):
    """The element once it exists: Streamlit draws a page in several passes."""
    return wait_until(driver, lambda: driver.find_elements(By.XPATH, xpath)[0], f"{xpath} present", timeout)


def click(driver, xpath: str, timeout: float = 30) -> None:
    """Click once the element exists and takes the click."""

    def clicked() -> bool:
        try:
            driver.find_element(By.XPATH, xpath).click()
            return True
        except ElementClickInterceptedException:
            return False

    wait_until(driver, clicked, f"a click on {xpath}", timeout)


def click_button(driver, label: str) -> None:
    click(driver, f"//button[.//p[normalize-space()='{label}']]")


def selectbox(label: str) -> str:
    return f"//div[@data-testid='stSelectbox' and .//label[normalize-space()='{label}']]"


def chosen(driver, label: str) -> str:
    """What the selectbox labelled `label` shows (its combobox input holds the option's text)."""
    box = driver.find_element(By.XPATH, selectbox(label))
    field = box.find_elements(By.XPATH, ".//input[@role='combobox']")
    return " ".join([box.text, *(f.get_attribute("value") or "" for f in field)])


def choose(driver, label: str, option_prefix: str) -> None:
    """Pick the option starting with `option_prefix` in the selectbox labelled `label`, and wait until the box
    shows it."""
    click(driver, f"//input[@role='combobox' and @aria-label='{label}']")
    click(driver, f"//*[@role='option' and starts-with(normalize-space(), '{option_prefix}')]")
    wait_until(driver, lambda: option_prefix in chosen(driver, label), f"'{label}' showing {option_prefix}")


def type_into(driver, xpath: str, text: str, *after) -> None:
    """Type `text` over a field's value, then the keys `after` (TAB: leave it, so Streamlit takes the value), until
    the field holds it (a rerun that redraws the field meanwhile gets it typed again)."""

    def typed() -> bool:
        field = driver.find_element(By.XPATH, xpath)
        if field.get_attribute("value") != text:
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(text, *after)
        return driver.find_element(By.XPATH, xpath).get_attribute("value") == text

    wait_until(driver, typed, f"{xpath} holding {text!r}")


def set_number(driver, label: str, value: int, *after) -> None:
    """Type `value` into the number field labelled `label` and leave it with TAB (Enter would submit a form: the
    journey presses it once on purpose)."""
    type_into(driver, f"//input[@aria-label='{label}']", str(value), *(after or (Keys.TAB,)))


FORBIDDEN = re.compile(r"\bnan\b|\bNone\b|DeltaGenerator|Traceback|\x1b")  # what no page may ever show


def assert_clean(driver) -> None:
    """No page shows Python's internals: nan, None, a DeltaGenerator's repr, a traceback, a terminal escape."""
    text = driver.find_element(By.TAG_NAME, "body").text
    found = FORBIDDEN.search(text)
    assert not found, f"the page shows {found.group()!r}: …{text[max(0, found.start() - 200) : found.end() + 200]}…"


def upload(driver, path: Path, nth: int = 0) -> None:
    """Give a Streamlit file uploader a file, as choosing it in the file dialog does, until the uploader lists it:
    a file given to an uploader that a rerun then draws anew is dropped (a page polling a live job reruns often),
    so it is given again once 20 s passed without it listed."""
    given = [0.0]

    def listed() -> bool:
        if path.name in body_text(driver):
            return True
        if time.time() - given[0] > 20:
            driver.find_elements(By.XPATH, "//input[@type='file']")[nth].send_keys(str(path))
            given[0] = time.time()
        return False

    wait_until(driver, listed, f"{path.name} listed by file uploader {nth}", 60)


def sidebar_text(driver) -> str:
    return driver.find_element(By.XPATH, "//*[@data-testid='stSidebar']").text


def correction_box(driver) -> str:
    """What the Correct and keep box holds (its panel opened first: a folded panel's text is not on the page)."""
    box = "//textarea[@aria-label='Transcript (correct it)']"
    if not driver.find_elements(By.XPATH, box) or not driver.find_element(By.XPATH, box).is_displayed():
        click(driver, "//summary[.//p[normalize-space()='Correct and keep in a dataset']]")
    return find(driver, box).get_attribute("value")


ETA = re.compile(r"running · step (\d+)/(\d+) · ETA (?:(\d+)h )?(?:(\d+)m)? ?(?:(\d+)s)?")


def eta_seconds_shown(driver) -> tuple[int, int] | None:
    """(step, seconds left) from the live view's 'running · step 40/3000 · ETA 9m 47s', once it shows one."""
    found = ETA.search(body_text(driver))
    if not found:
        return None
    step, _, hours, minutes, seconds = (int(g) if g else 0 for g in found.groups())
    return step, 3600 * hours + 60 * minutes + seconds


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_data_train_compare_in_the_browser(app_url, browser):
    url, home = app_url
    browser.get(url)
    wait_for_text(browser, "Generate with espeak-ng")
    wait_for_text(browser, "Run the offline demo")  # the sidebar, drawn after the page
    assert "Choose a source" not in body_text(browser)  # it says what to do with the source chosen: generate
    choose(browser, "Base model you will train", "demo")
    wait_for_text(browser, "listens 3 s at a time")  # 9. the toy gets word lists, not sentences too long for it
    set_number(browser, "Utterances", 60)
    click_button(browser, "Generate with espeak-ng")
    wait_for_text(browser, "Ready:")
    click_button(browser, "Examine the first rows")
    wait_for_text(browser, "Rows examined", timeout=120)
    shot(browser, "data-doctor")
    click(browser, "//*[@role='tab' and contains(., 'Prepare features')]")
    click_button(browser, "Prepare features")
    wait_for_text(browser, "Prepared nb-synthetic", timeout=120)
    wait_for_text(browser, "the test split has 6 rows")  # 9. … with the width of a WER's interval on them
    assert "rows dropped" not in body_text(browser)  # 9. every word list fits the 3 s window
    wait_until(browser, lambda: "Empty workspace" not in sidebar_text(browser), "the sidebar seeing the dataset")
    shot(browser, "data")

    browser.get(f"{url}/train")
    wait_for_text(browser, "Start training")
    # 1. Enter in a number field starts nothing; Start with the preset's 200-step intervals warns first
    set_number(browser, "max steps", 60, Keys.ENTER)
    click_button(browser, "Preview command")  # 7. the command and estimate, under the form, the panel open
    wait_for_text(browser, "python -m core train --data nb-synthetic --run nb-synthetic-1")
    click_button(browser, "Start training")
    wait_for_text(browser, "Start anyway")
    shot(browser, "train-warnings")
    shown = body_text(browser)
    assert "eval steps 200 > max steps 60" in shown and "warm-up 50 of 60 steps" in shown, shown[:2000]
    assert not (home / "runs").is_dir() or not any((home / "runs").iterdir())  # neither Enter nor Start started one
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
    click(browser, "//*[@role='tab' and contains(., 'Evaluations and utterances')]")
    wait_for_text(browser, "S: words substituted")  # the per-utterance table, its columns explained
    shot(browser, "compare-utterances")
    assert_clean(browser)


def test_a_second_run_is_followed_stopped_resumed_and_its_audio_transcribed(app_url, browser, microphone_file):
    url, home = app_url
    assert (home / "runs" / "nb-synthetic-1" / "best.json").is_file(), "needs the run trained by the test above"
    browser.get(f"{url}/train")
    click(browser, "//summary[.//p[normalize-space()='New run']]")  # folded once a run exists
    wait_for_text(browser, "Start training")
    # 7. the run name offered is a free one, and Preview leaves its command where the user looks
    assert find(browser, "//input[@aria-label='run']").get_attribute("value") == "nb-synthetic-2"
    for label, value in (("max steps", 3000), ("eval steps", 1000), ("save steps", 1000), ("warmup steps", 5)):
        set_number(browser, label, value)
    click_button(browser, "Preview command")
    wait_for_text(browser, "--run nb-synthetic-2")  # visible text: the panel did not fold over it
    click_button(browser, "Start training")
    wait_for_text(browser, "Started nb-synthetic-2")
    # 6. the started run is the one shown: the picker, the live view and the sidebar, without another refresh
    assert "nb-synthetic-2" in chosen(browser, "Run")
    wait_until(browser, lambda: "Run: nb-synthetic-2" in sidebar_text(browser), "the sidebar following the run", 10)
    before = wait_until(browser, lambda: eta_seconds_shown(browser), "an ETA for the running run", 120)
    assert_clean(browser)
    click_button(browser, "Stop")
    wait_for_text(browser, "stopped · step", timeout=120)
    shot(browser, "train-stopped")
    assert "ETA" not in find(browser, "//*[contains(., 'stopped · step')]").text.split("stopped · step")[-1][:40]
    assert_clean(browser)

    browser.get(f"{url}/compare")
    wait_for_text(browser, "Config diff")
    wait_for_text(browser, "warmup steps")  # the two runs differ there (and in their steps), nowhere else
    shot(browser, "compare-diff")
    assert_clean(browser)

    browser.get(f"{url}/transcribe")
    wait_for_text(browser, "Audio file")
    # 4. the workspace's language is chosen, not auto-detect
    assert "Norwegian Bokmål (nb)" in chosen(browser, "Language")
    upload(browser, microphone_file)
    wait_for_text(browser, "Download the transcript as", timeout=120)
    norwegian = correction_box(browser)
    assert norwegian and norwegian in body_text(browser)
    # 4. auto-detect hears espeak-ng's Norwegian as something else, unsure: said in words, with the choices
    choose(browser, "Language", "auto-detect")
    wait_for_text(browser, "Not sure which language this is", timeout=120)
    shot(browser, "transcribe-unsure")
    # 2. the correction box holds the transcript shown above it, not the first one
    detected = wait_until(browser, lambda: (t := correction_box(browser)) != norwegian and t, "a new box", 60)
    assert detected in body_text(browser)
    click_button(browser, "Norwegian Bokmål")
    wait_until(browser, lambda: correction_box(browser) == norwegian, "the Norwegian transcript back", 60)
    assert "Norwegian Bokmål (nb)" in chosen(browser, "Language")
    # 3. timing every word keeps the text: the transcript shown, then the box (apart, so a failure says which)
    click(browser, "//label[.//p[normalize-space()='Time every word']]")
    wait_for_text(browser, "Play from the word", timeout=120)
    assert norwegian in body_text(browser)
    assert correction_box(browser) == norwegian
    # a download reruns the page: the transcript is shown again, not made again
    downloads = ARTIFACTS / "downloads"
    shutil.rmtree(downloads, ignore_errors=True)
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    click_button(browser, "TXT")
    saved = wait_until(browser, lambda: [p for p in downloads.glob("*.txt")], "the TXT download", 60)[0]
    assert saved.read_text(encoding="utf-8").split() == norwegian.split()
    assert "Transcribing" not in body_text(browser)
    shot(browser, "transcribe")
    assert_clean(browser)

    # 5. resumed, the ETA counts the steps run since, not the minutes it stood stopped
    browser.get(f"{url}/train")
    wait_for_text(browser, "stopped · step", timeout=60)
    click_button(browser, "Resume")
    resumed_at = before[0]  # the run stopped at or after this step
    # the pace of this worker's own steps: the ETA once it has logged a pace's worth of rows (6) since the resume
    after = wait_until(
        browser,
        lambda: (eta := eta_seconds_shown(browser)) and eta[0] >= resumed_at + 8 and eta,
        "an ETA eight steps after the resume",
        180,
    )
    shot(browser, "train-resumed")
    click_button(browser, "Stop")  # the rest of the journey needs the cores (stopped before any assertion)
    wait_for_text(browser, "stopped · step", timeout=120)
    # at the same pace the time left shrinks with the steps left (twice that, and a minute, for a loaded machine);
    # counted across the stop it came out many times too long
    assert after[1] <= 2 * before[1] * (3000 - after[0]) / (3000 - before[0]) + 60, (before, after)


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
    body = body_text(browser)
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
    # 8. a server that cannot be reached: the message stays in place with why and a Retry, at once
    click(browser, "//summary[.//p[normalize-space()='LLM endpoint']]")
    type_into(browser, "//input[@aria-label='Base URL']", f"http://127.0.0.1:{free_port()}/v1", Keys.TAB)
    find(browser, "//textarea[@data-testid='stChatInputTextArea']").send_keys("tredje", Keys.ENTER)
    wait_for_text(browser, "Not answered: cannot connect")
    find(browser, "//button[.//p[normalize-space()='Retry']]")
    assert body_text(browser).index("tredje") < body_text(browser).index("Not answered")  # the turn, then why
    shot(browser, "conversation-failed")
    type_into(browser, "//input[@aria-label='Base URL']", standin.base_url, Keys.TAB)
    click_button(browser, "Retry")
    wait_for_text(browser, "You said: tredje (turn 3)")
    wait_until_gone(browser, "Not answered")
    click(browser, "//button[.//p[normalize-space()='Upload a clip']]")
    wait_for_text(browser, "A spoken clip")
    upload(browser, microphone_file)
    wait_for_text(browser, "Transcript (edit before sending)", timeout=120)
    click_button(browser, "Send")
    wait_for_text(browser, "(turn 4)", timeout=60)  # the spoken turn went to the LLM with the three before it
    shot(browser, "conversation")
    assert_clean(browser)
