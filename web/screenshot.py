"""Screenshot of the page at work, for the README (docs/web_page.png).

    python web/screenshot.py --site SITE --out docs/web_page.png car1.png car2.png:40,30,200,150

SITE is a folder written by `posenet-mlvae export --web`; each image may carry a box after a
colon. Serves SITE with its serve.py, opens it in Debian's headless chromium (selenium +
chromium-driver, as tests/test_web_page.py does), opens the images, sets the boxes, waits for
the predictions and saves the page.
"""

from __future__ import annotations

import argparse
import base64
import re
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="folder from `posenet-mlvae export --web`")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--width", type=int, default=1200, help="window width in pixels")
    parser.add_argument("images", nargs="+", metavar="IMAGE[:x1,y1,x2,y2]")
    args = parser.parse_args(argv)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from data_tools.atomic_write import atomic_write_bytes

    site = Path(args.site).resolve()
    items = [(Path(text.split(":")[0]).resolve(), text.split(":")[1] if ":" in text else "")
             for text in args.images]
    server = subprocess.Popen([sys.executable, "serve.py", "--port", "0"], cwd=site,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--enable-unsafe-swiftshader", "--hide-scrollbars",
                     f"--window-size={args.width},900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        port = re.search(r"127\.0\.0\.1:(\d+)/", server.stdout.readline()).group(1)
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 60).until(
            lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "ready")
        driver.find_element(By.ID, "file-input").send_keys("\n".join(str(p) for p, _ in items))
        done = "return [...document.querySelectorAll('#results tbody tr')].every(r => r.dataset.state === 'done') && document.querySelectorAll('#results tbody tr').length === arguments[0]"
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(done, len(items)))
        for path, box in items:
            if box:
                field = driver.find_element(By.CSS_SELECTOR, f'figure[data-name="{path.name}"] .box-input')
                field.clear()
                field.send_keys(box + Keys.ENTER)
        time.sleep(0.5)
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(done, len(items)))
        driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
        time.sleep(0.3)
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        atomic_write_bytes(Path(args.out), base64.b64decode(shot["data"]))
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
