"""The HTML report in a real browser (headless Chromium through Selenium): no console errors,
sorting by a metric header, a thumbnail opening the full overlay, and a screenshot.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``) and
``selenium`` (the ``test`` extra); skips with the reason otherwise. The driver path is given
explicitly so that Selenium never tries to download one.
"""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import pytest
from tests.reporting_fixtures import CASES, make_evaluation

from ctseg.reporting import build_report

_CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
_DRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _first(paths: tuple[str, ...], name: str) -> str:
    found = next((p for p in paths if Path(p).is_file()), None) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} not installed (apt-get install chromium chromium-driver); the browser test needs it")
    return found


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _first(_CHROMIUM, "chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = _first(_DRIVER, "chromedriver")
    try:
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except Exception:  # a start-up hiccup on a loaded machine: one more try
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


def _severe(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def _case_order(driver) -> list[str]:
    return [row.get_attribute("data-case") for row in driver.find_elements("css selector", "#cases-0 tbody tr")]


def test_report_in_headless_chromium(browser, tmp_path) -> None:
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    paths = make_evaluation(tmp_path / "data")
    report = build_report(paths["eval"], tmp_path / "report.html").path
    browser.get(report.resolve().as_uri())
    assert _severe(browser) == []
    assert browser.find_element("css selector", "#cases-0").get_attribute("data-name") == "liver"
    assert _case_order(browser) == [c[0] for c in CASES]  # file order before any click

    dice = {r["case"]: float(r["dice"]) for r in csv.DictReader((paths["eval"] / "metrics.csv").open()) if r["name"] == "liver"}
    header = browser.find_element("css selector", "#cases-0 th[data-metric='dice']")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert _case_order(browser) == sorted(dice, key=dice.get)
    header.click()
    assert _case_order(browser) == sorted(dice, key=dice.get, reverse=True)

    # the tumour tab: undefined HD95 values (inf: one mask empty) sort after the finite ones
    browser.find_element("css selector", "button[data-target='cases-1']").click()
    assert browser.find_element("css selector", "#cases-1").is_displayed()
    assert not browser.find_element("css selector", "#cases-0").is_displayed()
    hd95 = {r["case"]: float(r["hd95"]) for r in csv.DictReader((paths["eval"] / "metrics.csv").open()) if r["name"] == "tumour"}
    browser.find_element("css selector", "#cases-1 th[data-metric='hd95']").click()
    order = [row.get_attribute("data-case") for row in browser.find_elements("css selector", "#cases-1 tbody tr")]
    assert order == sorted(hd95, key=lambda c: (math.isnan(hd95[c]), hd95[c]))

    modal = browser.find_element("id", "overlay-modal")
    assert not modal.is_displayed()
    thumb = browser.find_element("css selector", "#cases-1 tbody tr:first-child img.thumb")
    assert browser.execute_script("return arguments[0].naturalWidth", thumb) > 0  # the thumbnail decoded
    thumb.click()
    WebDriverWait(browser, 5).until(ec.visibility_of(modal))
    full = browser.find_element("id", "overlay-full")
    WebDriverWait(browser, 5).until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", full))
    assert full.is_displayed() and full.size["width"] > 300
    assert order[0] in browser.find_element("id", "overlay-caption").text
    shot = tmp_path / "report_modal.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    modal.find_element("css selector", "button").click()  # the close button
    WebDriverWait(browser, 5).until(ec.invisibility_of_element(modal))
    browser.save_screenshot(str(tmp_path / "report_page.png"))
    assert _severe(browser) == []
