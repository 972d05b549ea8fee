"""The `rnnapps serve` page in a real headless browser (Debian's Chromium and
ChromeDriver, driven by Selenium): each tab's form round-trips through the
REST API."""

import contextlib
import json

import pytest

from serving_support import Server, browser

pytestmark = pytest.mark.tensorflow_only


@pytest.fixture(scope="module")
def page(exports, sleeper, tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    server = Server("--model-base-path", str(exports), "--model", f"sleep={sleeper}",
                    "--poll-seconds", "0", cwd=folder)
    driver = browser(folder / "profile")
    try:
        load_page(driver, server)
        yield driver, server
    finally:
        driver.quit()
        server.stop()


def load_page(driver, server):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(server.url + "/")
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "true")


def wait_for(driver, css, timeout=60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css)))


def open_tab(driver, name):
    driver.find_element("id", f"tab-{name}").click()
    assert driver.find_element("id", f"panel-{name}").is_displayed()


def test_one_tab_per_model(page):
    driver, _ = page
    tabs = [t.text for t in driver.find_elements("css selector", "nav button")]
    assert tabs == ["captioning", "forecasting", "next_word", "sentiment", "sleep", "translation"]
    assert driver.find_element("id", "panel-captioning").is_displayed()
    assert not driver.find_element("id", "panel-sentiment").is_displayed()


def test_sentiment_tab_shows_the_label_and_probabilities(page):
    driver, server = page
    open_tab(driver, "sentiment")
    driver.find_element("id", "sentiment-input").send_keys("The best coffee I have had in years.")
    driver.find_element("id", "sentiment-submit").click()
    label = wait_for(driver, "#sentiment-result .label").text
    _, body = server.call("/v1/models/sentiment:predict",
                          {"instances": ["The best coffee I have had in years."]})
    assert label == body["predictions"][0]["labels"]
    shown = [float(p.text) for p in driver.find_elements("css selector", "#sentiment-result .probability")]
    assert shown == pytest.approx(body["predictions"][0]["probabilities"], abs=1e-3)


def test_translation_tab_shows_the_translation(page):
    driver, server = page
    open_tab(driver, "translation")
    driver.find_element("id", "translation-input").send_keys("Wie spät ist es?")
    driver.find_element("id", "translation-submit").click()
    shown = wait_for(driver, "#translation-result .muted").text
    _, body = server.call("/v1/models/translation:predict", {"instances": ["Wie spät ist es?"]})
    expected = body["predictions"][0]
    assert driver.find_element("css selector", "#translation-result .translation").get_attribute(
        "textContent") == expected["translations"]
    assert shown == f"score {expected['scores']:.3f}"


def test_next_word_tab_shows_the_suggestions_and_the_continuation(page):
    driver, server = page
    open_tab(driver, "next_word")
    driver.find_element("id", "next_word-input").send_keys("I would like a cup of")
    driver.find_element("id", "next_word-submit").click()
    wait_for(driver, "#next_word-result .continuation")
    _, body = server.call("/v1/models/next_word:predict",
                          {"instances": [{"text": "I would like a cup of", "k": 5}]})
    expected = body["predictions"][0]
    words = [b.find_element("css selector", "span").text
             for b in driver.find_elements("css selector", "#next_word-result .bar")]
    assert words == expected["words"] and len(words) == 5
    shown = [float(p.text) for p in driver.find_elements("css selector", "#next_word-result .probability")]
    assert shown == pytest.approx(expected["probabilities"], abs=1e-3)
    continuation = driver.find_element("css selector", "#next_word-result .continuation")
    assert continuation.get_attribute("textContent") == f"I would like a cup of {expected['continuation']}"


def test_captioning_tab_captions_a_chosen_image(page, tmp_path):
    from PIL import Image

    driver, server = page
    open_tab(driver, "captioning")
    image = tmp_path / "yellow.png"
    Image.new("RGB", (24, 24), (255, 200, 0)).save(image)
    driver.find_element("id", "captioning-input").send_keys(str(image))
    wait_for(driver, "#captioning-result .muted")
    caption = driver.find_element("css selector", "#captioning-result .caption").get_attribute(
        "textContent")
    import base64

    _, body = server.call("/v1/models/captioning:predict",
                          {"instances": [{"b64": base64.b64encode(image.read_bytes()).decode()}]})
    assert caption == body["predictions"][0]["captions"]


def forecast_the_example(driver, server, name):
    """Submit the forecasting tab `name`'s example window; (the model's
    info, the plotted history's points, the forecast table's values, the
    REST API's forecast of the same window)."""
    open_tab(driver, name)
    driver.find_element("id", f"{name}-example").click()
    driver.find_element("id", f"{name}-submit").click()
    wait_for(driver, f"#{name}-result svg.plot")
    _, described = server.call("/rnnapps/models")
    info = next(m for m in described["models"] if m["name"] == name)["info"]
    history = driver.find_element("css selector", f"#{name}-result svg .history").get_attribute("points").split()
    values = [float(td.text) for td in driver.find_elements("css selector", f"#{name}-result .forecast-value")]
    instance = info["recent"]
    if "recent_future" in info:  # a model with known-future covariates
        instance = {"window": info["recent"], "future": info["recent_future"]}
    _, body = server.call(f"/v1/models/{name}:predict", {"instances": [instance]})
    return info, history, values, body["predictions"][0]["forecast"]


def test_forecasting_tab_plots_the_window_forecast_and_interval(page):
    driver, server = page
    info, history, values, served = forecast_the_example(driver, server, "forecasting")
    assert len(history) == info["lookback"]
    forecast = driver.find_element("css selector", "svg .forecast").get_attribute("points").split()
    assert len(forecast) == info["horizon"] + 1  # joined to the window's last point
    band = driver.find_element("css selector", "svg .interval").get_attribute("points").split()
    assert len(band) == 2 * info["horizon"]
    assert values == pytest.approx(served, rel=1e-3)


@contextlib.contextmanager
def page_of_one_forecaster(tmp_path, name, **overrides):
    """A tiny forecasting export (`overrides` of its config), served as
    `name` by `rnnapps serve`, its page loaded: `(driver, server)`."""
    from serving_support import tiny_export

    tiny_export("forecasting", tmp_path / "models", **overrides)
    server = Server("--model", f"{name}={tmp_path / 'models' / 'forecasting'}", "--poll-seconds", "0",
                    cwd=tmp_path)
    driver = browser(tmp_path / "profile")
    try:
        load_page(driver, server)
        yield driver, server
    finally:
        driver.quit()
        server.stop()


def test_forecasting_tab_serves_a_seasonal_model_of_half_hours(tmp_path):
    # The seasonal structure on taylor reads 8 weeks of half-hours (2,689
    # steps): the page's example window round-trips too.
    with page_of_one_forecaster(tmp_path, "demand", data="taylor") as (driver, server):
        info, history, values, served = forecast_the_example(driver, server, "demand")
        assert (info["lookback"], info["horizon"]) == (8 * 336 + 1, 48)
        assert len(history) == info["lookback"]
        assert values == pytest.approx(served, rel=1e-3)
        # Demand in MW, near the window's own range.
        assert min(info["recent"])[0] * 0.8 < min(values) and max(values) < max(info["recent"])[0] * 1.2


def test_forecasting_tab_takes_the_future_covariates_of_a_model_that_reads_them(tmp_path):
    # elecdemand with its workday flag known over the horizon: the tab gets
    # a second box, filled by the example, checked before it is sent.
    with page_of_one_forecaster(tmp_path, "load", data="elecdemand", future_columns=["workday"]) as (
            driver, server):
        info, history, values, served = forecast_the_example(driver, server, "load")
        assert info["future_columns"] == ["workday"] and len(info["recent_future"]) == 48
        assert len(history) == info["lookback"] and len(values) == 48
        assert values == pytest.approx(served, rel=1e-3)
        label = driver.find_element("css selector", "label[for='load-future']").text
        assert "workday" in label and "48" in label
        box = driver.find_element("id", "load-future")
        box.clear()
        box.send_keys("1 0 1")
        driver.find_element("id", "load-submit").click()
        alert = wait_for(driver, "#load-result .error").text
        assert "future covariates of 48 steps" in alert and "got 3" in alert


def test_a_bad_window_shows_the_error_and_the_page_keeps_working(page):
    driver, _ = page
    open_tab(driver, "forecasting")
    box = driver.find_element("id", "forecasting-input")
    box.clear()
    box.send_keys("1 2 3")
    driver.find_element("id", "forecasting-submit").click()
    alert = wait_for(driver, "#forecasting-result .error").text
    assert "window of" in alert
    driver.find_element("id", "forecasting-example").click()
    driver.find_element("id", "forecasting-submit").click()
    wait_for(driver, "#forecasting-result svg.plot")


def test_a_savedmodel_of_any_kind_gets_a_json_tab(page):
    driver, _ = page
    open_tab(driver, "sleep")
    driver.find_element("id", "sleep-input").send_keys('{"instances": [0.01, 0.02]}')
    driver.find_element("id", "sleep-submit").click()
    answer = json.loads(wait_for(driver, "#sleep-result pre").text)
    assert len(answer["predictions"]) == 2 and min(answer["predictions"]) >= 0.02


def test_the_page_renders(page, tmp_path):
    driver, _ = page
    path = tmp_path / "page.png"
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
