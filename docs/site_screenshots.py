"""Screenshots of the leaderboard site for the README (desktop 1366 px and phone 390 px wide).

    python -m bench site --out /tmp/site && python docs/site_screenshots.py /tmp/site

Writes docs/site-<page>-<desktop|phone>.png for the index, the default board (mnist/cnn), the model zoo and
the meta-evaluation page, in Debian's headless Chromium (apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import sys
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PAGES = {"index": "index.html", "board": "mnist-cnn/index.html", "zoo": "mnist-zoo/index.html",
         "meta": "mnist-cnn-meta/index.html"}
SIZES = {"desktop": (1366, 1100), "phone": (390, 1500)}


def main(site: Path, out: Path) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        for kind, (w, h) in SIZES.items():
            driver.set_window_size(w, h)
            for name, page in PAGES.items():
                driver.get((site / page).resolve().as_uri())
                driver.save_screenshot(str(out / f"site-{name}-{kind}.png"))
    finally:
        driver.quit()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent)
