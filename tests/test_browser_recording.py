"""Your own voice in a real browser: headless Chromium whose fake microphone speaks espeak-ng Norwegian records five
prompts on the Data page (a silent take in between is refused with the reason), the set is prepared there and a
two-step run trains on it, and a transcript corrected on Transcribe joins the set. Screenshots land in
test-artifacts/ (record-*.png)."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import REPO, chromium, make_audio, tiny_config
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from test_browser import (
    ARTIFACTS,
    assert_clean,
    choose,
    click,
    click_button,
    find,
    free_port,
    shot,
    type_into,
    upload,
    wait_until_gone,
)
from test_browser import wait_for_text as wait_for

from core.audio import load_audio
from core.data import RecordingSet
from core.training import start_run
from core.workspace import Workspace

pytestmark = pytest.mark.browser

# short, so that any 2 s of the microphone's loop holds one whole "god morgen"; chosen so that the split by text
# leaves one test row and, with a validation share of 0.3, two validation rows (in_slice is stable)
PROMPTS = ["God morgen.", "Hei på deg.", "Takk for i dag.", "Kom hit nå.", "Det er fint."]
# a muted microphone: the browser's own stream with its track disabled, which sends silence (zeros)
SILENT_MICROPHONE = """
window.realGetUserMedia = window.realGetUserMedia || navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  const stream = await window.realGetUserMedia(constraints);
  stream.getAudioTracks().forEach((track) => { track.enabled = false; });
  return stream;
};
"""
REAL_MICROPHONE = "navigator.mediaDevices.getUserMedia = window.realGetUserMedia;"


@pytest.fixture(scope="module")
def app(tmp_path_factory, session_workspace, demo_artifact):
    home = tmp_path_factory.mktemp("recording") / "ws"
    shutil.copytree(session_workspace.models, home / "models", copy_function=os.link)  # the demo model, built once
    port = free_port()
    env = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_PORT": str(port)}
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "app-server-recording.log"
    with open(log_path, "wb") as log:  # a file: a pipe nobody reads fills up
        server = subprocess.Popen(
            ["bash", "scripts/run.sh"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium whose microphone says "god morgen" over and over (48 kHz, as a real one)."""
    folder = tmp_path_factory.mktemp("voice")
    speech = load_audio(make_audio(folder / "speech.wav", "god morgen"), sample_rate=48000)
    pause = np.zeros(int(0.6 * 48000), np.float32)
    sf.write(folder / "mic.wav", np.concatenate([pause[:14400], speech, pause]), 48000, subtype="PCM_16")
    driver = chromium(folder / "mic.wav", "--autoplay-policy=no-user-gesture-required")
    yield driver
    driver.quit()


def replace_text(driver, xpath: str, text: str) -> None:
    """Type `text` over a field's value and leave the field (Streamlit takes the value then)."""
    type_into(driver, xpath, text, Keys.TAB)


def record(driver, seconds: float = 2.0) -> None:
    click(driver, "//button[@aria-label='Record']")
    time.sleep(seconds)  # the length of the take, not a wait for the app
    click(driver, "//button[@aria-label='Stop recording']")


def test_record_five_prompts_prepare_train_and_keep_a_correction(app, browser):
    url, home = app
    browser.get(url)
    wait_for(browser, "Generate with espeak-ng")
    click_button(browser, "Record my voice")
    click_button(browser, "My own text")
    box = find(browser, "//textarea[@aria-label='One prompt a line']")
    box.send_keys("\n".join(PROMPTS))
    box.find_element(By.XPATH, "//input[@aria-label='Speaker']").click()  # leaving the box commits the text
    find(browser, "//button[.//p[normalize-space()='Add these prompts'] and not(@disabled)]")  # the text arrived
    click_button(browser, "Add these prompts")
    wait_for(browser, "5 prompts left")

    # 1. Five prompts, one at a time; a silent take before the second is refused with what to do.
    for kept, prompt in enumerate(PROMPTS):
        wait_for(browser, f"{kept} take{'' if kept == 1 else 's'} kept")
        wait_for(browser, prompt)
        if kept == 1:
            browser.execute_script(SILENT_MICROPHONE)
            record(browser)
            wait_for(browser, "Not kept: no speech heard")
            assert find(browser, "//button[.//p[normalize-space()='Keep']]").get_attribute("disabled") is not None
            shot(browser, "record-silent-take")
            browser.execute_script(REAL_MICROPHONE)
            click_button(browser, "Record again")
            wait_until_gone(browser, "Not kept")  # a fresh recorder is in place
        record(browser)
        wait_for(browser, "Sounds fine")
        if kept == 0:
            shot(browser, "record-take")
        click_button(browser, "Keep")
    wait_for(browser, "Every prompt is read.")
    wait_for(browser, "5 takes kept")
    click(browser, "//summary[.//p[normalize-space()='Kept takes (5)']]")
    find(browser, "//button[@data-testid and .//*[normalize-space()='delete']]")  # Delete as an icon, never "D…"
    shot(browser, "record-done")
    assert_clean(browser)
    folder = home / "recordings" / "my-voice"
    assert sorted(p.read_text(encoding="utf-8").strip() for p in folder.glob("take-*.txt")) == sorted(PROMPTS)
    assert len(list(folder.glob("take-*.wav"))) == 5  # and nothing of the silent take
    assert all(0.5 < len(load_audio(p)) / 16000 < 3 for p in folder.glob("take-*.wav"))

    # 2. The set is a source like any folder: prepared on the page, then two training steps on it.
    choose(browser, "Base model you will train", "demo")
    replace_text(browser, "//input[@aria-label='Validation share']", "0.30")
    click(browser, "//*[@role='tab' and contains(., 'Prepare features')]")
    click_button(browser, "Prepare features")
    wait_for(browser, "Prepared nb-record", timeout=120)
    wait_for(browser, "my-voice · nb · 5 takes")  # the Recordings list: takes, duration, speakers, size
    shot(browser, "record-prepared")
    config = tiny_config("my-voice-1", data="nb-record", max_steps=2, logging_steps=1, eval_steps=2, save_steps=2)
    run = start_run(config, Workspace(home), foreground=True)
    assert run.status().state == "completed" and run.best_checkpoint_name() == "checkpoint-2"

    # 3. Correct and keep: a transcript made on Transcribe, corrected, joins the set as a sixth pair.
    browser.get(f"{url}/transcribe")
    choose(browser, "Model", "base: demo")
    clip = make_audio(Path(home) / "hei.wav", "hei på deg")
    upload(browser, clip)
    wait_for(browser, "Download the transcript as", timeout=120)
    click(browser, "//summary[.//p[normalize-space()='Correct and keep in a dataset']]")
    replace_text(browser, "//textarea[@aria-label='Transcript (correct it)']", "Hei på deg.")
    click_button(browser, "Keep in dataset my-voice")
    wait_for(browser, "Kept take-0006.wav in my-voice")
    shot(browser, "record-transcribe-keep")
    assert_clean(browser)
    takes = RecordingSet(folder).takes()
    assert len(takes) == 6 and takes[-1].text == "Hei på deg." and (folder / "take-0006.txt").is_file()
