"""Screenshots of the `rnnapps serve` page for docs/serving.md.

Starts `rnnapps serve` on the exports under --model-base-path (train them
first: `rnnapps train sentiment`, `rnnapps train forecasting`, ...), opens
the page in headless Chromium (Debian's chromium and chromium-driver, with
Selenium), fills in each tab named by --tabs, and writes one screenshot per
tab, each written to a temporary file and renamed into place.

    python docs/figures/serve_page.py [--model-base-path saved_models] [--out docs/images]
"""

import argparse
import os
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "serving"))

from serving_support import Server, browser  # noqa: E402  (the tests' helpers)

INPUTS = {
    "sentiment": "Smooth, rich and not bitter at all. My new favourite coffee.",
    "translation": "Das Abendessen hat mir gut geschmeckt.",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-base-path", default="saved_models")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--tabs", default="sentiment,forecasting,translation")
    args = parser.parse_args(argv)

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as work:
        server = Server("--model-base-path", str(pathlib.Path(args.model_base_path).resolve()),
                        "--poll-seconds", "0", cwd=work)  # its log goes to `work`
        url = server.url + "/"
        driver = browser(pathlib.Path(work) / "profile")
        try:
            driver.get(url)
            wait = WebDriverWait(driver, 60)
            wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
            for name in args.tabs.split(","):
                driver.find_element(By.ID, f"tab-{name}").click()
                if name == "forecasting":
                    driver.find_element(By.ID, f"{name}-example").click()
                else:
                    driver.find_element(By.ID, f"{name}-input").send_keys(INPUTS[name])
                driver.find_element(By.ID, f"{name}-submit").click()
                wait.until(expected_conditions.visibility_of_element_located(
                    (By.CSS_SELECTOR, f"#{name}-result > *:not(.error)")))
                out = pathlib.Path(args.out) / f"serve_{name}.png"
                partial = out.with_name(f".{out.name}.partial.png")
                driver.save_screenshot(str(partial))
                os.replace(partial, out)
                print(f"wrote {out}")
        finally:
            driver.quit()
            server.stop()


if __name__ == "__main__":
    main()
