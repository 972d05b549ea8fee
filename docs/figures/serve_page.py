"""Screenshots of the `rnnapps serve` page for docs/serving.md.

Starts `rnnapps serve` on the exports under --model-base-path (train them
first: `rnnapps train sentiment`, `rnnapps train forecasting`, ...), opens
the page in headless Chromium (Debian's chromium and chromium-driver, with
Selenium), fills in each tab named by --tabs, and writes one screenshot per
tab, each written to a temporary file and renamed into place.

    python docs/figures/serve_page.py [--model-base-path saved_models] [--out docs/images]
"""

import argparse
import json
import os
import pathlib
import queue
import subprocess
import sys
import tempfile
import threading

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "serving"))

from serving_support import browser  # noqa: E402  (the tests' Chromium set-up)

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

    server = subprocess.Popen(
        [sys.executable, "-m", "rnnapps.cli", "serve", "--model-base-path",
         args.model_base_path, "--port", "0", "--poll-seconds", "0"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in server.stdout], daemon=True).start()
    url = json.loads(lines.get(timeout=300))["url"]
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(pathlib.Path(profile))
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
            server.terminate()
            server.wait(60)


if __name__ == "__main__":
    main()
