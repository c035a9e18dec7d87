"""The page at / in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`) driven by
Selenium against a real `serve`. It types a post, submits it, and reads the score the page shows, which
must be the one /v1/predict gives for the same post; an empty title shows the API's message. The
screenshot it takes is README's (docs/page.png)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_service import Service, _start, _stop

pytestmark = pytest.mark.integration
webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "page.png"
POST = {
    "title": "Why does ice float on water when most solids sink in their own liquid?",
    "body": "I understand hydrogen bonds are involved, but how exactly does the crystal structure make it less dense?",
}


@pytest.fixture(scope="module")
def served(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = _start(model_dir, tmp_path_factory.mktemp("page"))
    yield running
    assert _stop(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=420,1400"):
        options.add_argument(flag)  # a phone-width window
    driver = webdriver.Chrome(service=DriverService(DRIVER), options=options)
    yield driver
    driver.quit()


def _score_on_page(browser: object, url: str, title: str, body: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")  # type: ignore[attr-defined]
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#flair option")) > 2)  # the trained flairs
    browser.find_element(By.ID, "title").send_keys(title)  # type: ignore[attr-defined]
    browser.find_element(By.ID, "body").send_keys(body)  # type: ignore[attr-defined]
    browser.find_element(By.ID, "submit").click()  # type: ignore[attr-defined]
    wait.until(
        lambda d: d.find_element(By.ID, "result").is_displayed() or d.find_element(By.ID, "error").is_displayed()
    )


def test_page_shows_the_score_the_api_gives(served: Service, browser: object) -> None:
    from selenium.webdriver.common.by import By

    expected = httpx.post(served.url + "/v1/predict?explain=true", json=POST).json()  # the LLM reads it here
    _score_on_page(browser, served.url, POST["title"], POST["body"])  # ... so the page's answer is cached
    assert not browser.find_element(By.ID, "error").is_displayed()  # type: ignore[attr-defined]
    shown = float(browser.find_element(By.ID, "score").get_attribute("data-score"))  # type: ignore[attr-defined]
    assert shown == pytest.approx(expected["score"], rel=1e-12)
    assert browser.find_element(By.ID, "score").text == f"{round(expected['score']):,}"  # type: ignore[attr-defined]
    bars = browser.find_elements(By.CSS_SELECTOR, "#contributions-chart rect")  # type: ignore[attr-defined]
    assert len(bars) == len(expected["contributions"]) - 1
    # the drivers in a poster's words, largest first, each with a factor; no internal group name anywhere
    labels = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#contributions-chart text:not(.factor)")]  # type: ignore[attr-defined]
    assert labels == [d["reads_as"] for d in expected["drivers"]]
    factors = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#contributions-chart text.factor")]  # type: ignore[attr-defined]
    assert factors == [d["factor"] for d in expected["drivers"]] and "×1.00" not in factors, factors
    result = browser.find_element(By.ID, "result").text  # type: ignore[attr-defined]
    assert not [g for g in expected["contributions"] if g in result] and "log1p" not in result, result
    # every label of both charts fits its chart at phone width (nothing cut off at either edge)
    overflow = browser.execute_script(  # type: ignore[attr-defined]
        "return [...document.querySelectorAll('#result svg text')].filter(t => { const b = t.getBBox();"
        " return b.x < 0 || b.x + b.width > t.ownerSVGElement.viewBox.baseVal.width; }).map(t => t.textContent);"
    )
    assert overflow == [], overflow
    assert len(browser.find_elements(By.CSS_SELECTOR, "#interval-chart rect.band-wide")) == 1  # type: ignore[attr-defined]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#interval-chart rect.band-narrow")) == 1  # type: ignore[attr-defined]
    said = browser.find_element(By.ID, "interval-text").text  # type: ignore[attr-defined]
    (low80, high80), (low90, high90) = expected["interval_80"], expected["interval_90"]
    js = [f"{math.floor(b + 0.5):,}" for b in (low80, high80, low90, high90)]  # Math.round, not Python's round
    assert said == f"Likely between {js[0]} and {js[1]} (80%), {js[2]} and {js[3]} (90%)."
    assert "80% (dark) and 90% (light)" in browser.find_element(By.ID, "interval-caption").text  # type: ignore[attr-defined]
    status = browser.find_element(By.ID, "llm-status").text  # type: ignore[attr-defined]
    said = "Not used" if expected["fallback"] else "cache"
    assert said in status, status
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))  # type: ignore[attr-defined]


def test_empty_title_shows_the_api_message(served: Service, browser: object) -> None:
    from selenium.webdriver.common.by import By

    _score_on_page(browser, served.url, "", "a body without a title")
    error = browser.find_element(By.ID, "error")  # type: ignore[attr-defined]
    assert error.is_displayed() and "not accepted" in error.text and "'title'" in error.text


def test_a_steered_post_shows_the_sentence_and_the_limit(served: Service, browser: object) -> None:
    """A title sentence stuffed with the fixture's high-scoring words lifts the post past what one sentence
    may add: the page names the sentence and the limit the API reports."""
    from selenium.webdriver.common.by import By

    title, body = "Why does the ocean cell behave like that? Black hole gravity quantum star.", "I wondered."
    expected = httpx.post(served.url + "/v1/predict", json={"title": title, "body": body}).json()
    assert expected["steered"], expected  # the post this test needs: one sentence over the limit
    _score_on_page(browser, served.url, title, body)
    note = browser.find_element(By.ID, "steering")  # type: ignore[attr-defined]
    factor = f"{math.exp(expected['steering']['effect_log']):.1f}x"
    assert note.is_displayed() and "Black hole gravity quantum star." in note.text and factor in note.text
    assert f"at most {math.exp(expected['steering']['limit_log']):.1f}x" in note.text, note.text
