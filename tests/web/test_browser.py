"""The real page in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

Screenshots are saved in the test's tmp folder, ``<pytest tmp>/screenshots/`` (pytest prints
nothing about them on success: ``--basetemp DIR`` keeps them at a known place), and are also copied
to ``$TEST_ARTEFACTS_DIR`` when that is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .helpers import Server, free_port, start_server, tiny_text_book

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@contextlib.contextmanager
def browser_session() -> Iterator[Any]:
    """Headless Debian Chromium driven by Selenium, quit on exit."""
    if not (shutil.which("chromium") or Path(CHROMIUM).exists()):
        pytest.fail("chromium is missing: scripts/test.sh installs it (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1500",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or CHROMEDRIVER))
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser() -> Iterator[Any]:
    with browser_session() as driver:
        yield driver


def wait_for(what: Callable[[], Any], timeout: float = 120, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out: {message}")


def shoot(driver: Any, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))
    extra = os.environ.get("TEST_ARTEFACTS_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / f"{name}.png", Path(extra) / f"{name}.png")


def job_json(server: Server, job_id: int) -> dict:
    return httpx.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()


def test_page_end_to_end(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    shots = tmp_path / "screenshots"
    books = tmp_path / "books"
    books.mkdir()
    lighthouse = tiny_text_book(books / "lighthouse.md", "The Lighthouse", 3, 2)
    long_book = tiny_text_book(books / "long-night.md", "The Long Night", 4, 2)  # 12 sentences with titles
    env = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "10", "EBOOK2AUDIO_WORKERS": "1", "EBOOK2AUDIO_BATCH_CHARS": "40"}
    port = free_port()
    server = start_server(tmp_path, "--jobs", "2", port=port, **env)  # the two books at once
    try:
        browser.get(server.url)
        wait_for(lambda: browser.execute_script("return document.body.dataset.ready"), 30, "page ready")
        # Drop two books at once on the drop zone (a drop event carrying the two files, as a file
        # manager's drag and drop makes it).
        browser.execute_script(
            """const [names, texts] = [arguments[0], arguments[1]];
            const dt = new DataTransfer();
            names.forEach((n, i) => dt.items.add(new File([texts[i]], n, {type: "text/markdown"})));
            const zone = document.getElementById("drop");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));""",
            [lighthouse.name, long_book.name],
            [lighthouse.read_text(encoding="utf-8"), long_book.read_text(encoding="utf-8")],
        )
        cards = wait_for(lambda: len(found := browser.find_elements(By.CSS_SELECTOR, ".book")) == 2 and found,
                         60, "two book cards")  # fmt: skip
        by_title = {c.find_element(By.CSS_SELECTOR, ".title").text: c for c in cards}
        assert set(by_title) == {"The Lighthouse", "The Long Night"}
        card = by_title["The Lighthouse"]
        card.find_element(By.CSS_SELECTOR, "summary").click()
        rows = card.find_elements(By.CSS_SELECTOR, ".chapters tr")
        assert len(rows) == 3 and "1. Chapter 1" in rows[0].text and "16 words" in rows[0].text
        boxes = card.find_elements(By.CSS_SELECTOR, ".chapter-check")
        assert len(boxes) == 3 and all(b.is_selected() for b in boxes)
        boxes[1].click()  # chapters 1 and 3 only
        assert "(2 of 3 selected)" in card.find_element(By.CSS_SELECTOR, ".selected-count").text

        # Preview the bundled Piper voice saying the book's first sentence.
        Select(card.find_element(By.CSS_SELECTOR, ".engine")).select_by_value("piper")
        Select(card.find_element(By.CSS_SELECTOR, ".voice")).select_by_value("en_US-joe-medium")
        card.find_element(By.CSS_SELECTOR, ".preview-btn").click()
        seconds = wait_for(lambda: browser.execute_script(
            "const a = arguments[0].querySelector('.preview-audio');"
            "return !a.hidden && a.readyState >= 1 && a.duration", card), 90, "preview audio")  # fmt: skip
        assert 1.0 < seconds < 30.0
        shoot(browser, shots, "1-books")
        card.find_element(By.CSS_SELECTOR, ".convert-btn").click()  # Piper, chapters 1 and 3

        # The long book with the simulated engine: restart the server in the middle of it.
        other = by_title["The Long Night"]
        Select(other.find_element(By.CSS_SELECTOR, ".engine")).select_by_value("sim")
        other.find_element(By.CSS_SELECTOR, ".convert-btn").click()
        jobs = wait_for(lambda: len(found := browser.find_elements(By.CSS_SELECTOR, ".job")) == 2 and found,
                        30, "two jobs")  # fmt: skip
        first_id, long_id = (int(j.get_attribute("data-job-id")) for j in jobs)
        live = browser.find_element(By.CSS_SELECTOR, f'.job[data-job-id="{long_id}"]')
        text = wait_for(lambda: "x real time" in (t := live.find_element(By.CSS_SELECTOR, ".job-progress").text)
                        and "ETA" in t and t, 60, "live progress of the second job")  # fmt: skip
        assert "/12 sentences" in text
        shoot(browser, shots, "2-progress")
        # Pause (the conversion stops, its sentences are kept), then resume from them.
        live.find_element(By.CSS_SELECTOR, ".pause").click()
        wait_for(lambda: live.get_attribute("data-state") == "paused", 30, "paused")
        kept = job_json(server, long_id)["sentences_done"]
        assert 1 <= kept < 11
        live.find_element(By.CSS_SELECTOR, ".resume").click()
        second = wait_for(lambda: (j := job_json(server, long_id))["runs"] == 2 and j["phase"] == "synthesising"
                          and j, 60, "the second run")  # fmt: skip
        assert second["resumed"] >= kept, (kept, second)
        before = wait_for(lambda: (j := job_json(server, long_id))["sentences_done"] > kept and j, 60, "progress")
        assert before["state"] == "running" and before["sentences_done"] < 12
        server.stop(signal.SIGKILL)  # the server dies mid-job (its conversion child follows it)
        time.sleep(1.0)
        server = start_server(tmp_path, "--jobs", "2", port=port, **env)
        browser.refresh()
        wait_for(lambda: browser.execute_script("return document.body.dataset.ready"), 30, "page ready again")
        live = browser.find_element(By.CSS_SELECTOR, f'.job[data-job-id="{long_id}"]')
        wait_for(lambda: live.get_attribute("data-state") == "done", 120, "the resumed job done")
        after = job_json(server, long_id)
        assert after["runs"] >= 3 and after["resumed"] >= before["sentences_done"], (before, after)
        assert after["sentences_done"] == after["sentences_total"] == 12

        # Play chapter 3 of the first book from the page's chapter list, then download its m4b.
        first = browser.find_element(By.CSS_SELECTOR, f'.job[data-job-id="{first_id}"]')
        wait_for(lambda: first.get_attribute("data-state") == "done", 180, "first job done")
        assert first.find_element(By.CSS_SELECTOR, ".job-bar").get_attribute("value") == "100"
        links = first.find_elements(By.CSS_SELECTOR, ".chapter-link")
        assert [a.text for a in links] == ["Chapter 1", "Chapter 3"]
        start = float(links[1].get_attribute("data-start"))
        assert start > 1.0
        links[1].click()
        position = wait_for(lambda: browser.execute_script(
            "const a = arguments[0].querySelector('.job-audio'); return !a.paused && a.currentTime", first),
            30, "the chapter playing")  # fmt: skip
        assert position >= start - 0.01
        shoot(browser, shots, "3-finished")
        href = next(a.get_attribute("href") for a in first.find_elements(By.CSS_SELECTOR, ".download-link")
                    if a.get_attribute("href").endswith(".m4b"))  # fmt: skip
        m4b = tmp_path / "download.m4b"
        m4b.write_bytes(httpx.get(href, timeout=60).content)
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(m4b)],
                               capture_output=True, text=True, check=True)  # fmt: skip
        chapters = json.loads(probe.stdout)["chapters"]
        assert [c["tags"]["title"] for c in chapters] == ["Chapter 1", "Chapter 3"]
        assert abs(float(chapters[1]["start_time"]) - start) < 0.05
    finally:
        server.stop()
