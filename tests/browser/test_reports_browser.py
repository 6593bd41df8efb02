"""The report site as a reader opens it: headless Chromium, from file://, with the network off.

The site is built from the committed notebooks without executing them (``run_reports(execute=False)``,
the same pages, index and scorecard as ``make reports``); every page is loaded once and checked for
console errors, images that do not load, links that do not resolve, raw TeX, stderr blocks and test
markers, and for any request that tried to leave the machine. Screenshots of the index and two
reports go to ``reports/screenshots/``. Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them) and selenium; skipped without them.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from nn_interpretability.reports.runner import discover_notebooks, run_reports

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium not found: install Debian's chromium and chromium-driver (.ci/run does)",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (a dev extra) is not installed")

REPO = Path(__file__).resolve().parents[2]
SLUGS = [p.stem for p in discover_notebooks(REPO / "notebooks")]
PAGES = ["index.html", "scorecard.html", *(f"html/{slug}.html" for slug in SLUGS)]
SCREENSHOTS = {"index.html": "index.png", "html/06_backpropagation.html": "06_backpropagation.png",
               "html/10_cam_gradcam.html": "10_cam_gradcam.png"}
# Markdown text left over after MathJax: "$...$", "\(", "\[" or a TeX command such as "\alpha".
RAW_TEX = re.compile(r"\$[^$\n]+\$|\\[(\[]|\\[A-Za-z]{2,}")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Resolves once MathJax has typeset the page (at once on pages without it), after every image decoded.
SETTLE = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images).map(function (img) {
  img.loading = "eager";
  return img.decode().then(function () { return null; }, function () { return img.src.slice(0, 120); });
});
const typeset = new Promise(function (resolve) {
  if (!window.MathJax || !MathJax.Hub) { resolve(); return; }
  MathJax.Hub.Register.StartupHook("End", function () { MathJax.Hub.Queue(resolve); });
});
Promise.all([typeset, Promise.all(images)]).then(function (results) {
  done(results[1].filter(function (src) { return src !== null; }));
});
"""
# The prose of the page as a reader sees it, without code, scripts and typeset math.
PROSE = """
const skip = "SCRIPT,STYLE,CODE,PRE";
const texts = [];
document.querySelectorAll(".jp-MarkdownCell, .nni-note, .intro").forEach(function (root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent.closest(skip) || parent.closest(".MathJax, .MathJax_Display, .MathJax_Preview")) { continue; }
    texts.push(walker.currentNode.nodeValue);
  }
});
return texts.join(" ");
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    output = tmp_path_factory.mktemp("site")
    results = run_reports(notebooks_dir=REPO / "notebooks", output_dir=output, execute=False, show_progress=False)
    assert [r.name for r in results if not r.ok] == []
    return output


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    yield driver
    driver.quit()


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _screenshot(driver, path: Path) -> None:
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 12000), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                              "clip": clip})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


_SEEN: dict[str, dict] = {}


@pytest.fixture
def page(request, site, browser) -> dict:
    """Load one page (once per session) and gather what the checks look at."""
    name = request.param
    if name not in _SEEN:
        browser.get_log("browser"), _requests(browser)  # forget the previous page's
        file = site / name
        browser.get(file.as_uri())
        broken_images = browser.execute_async_script(SETTLE)
        _SEEN[name] = {
            "file": file,
            "console": [e["message"] for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")],
            "requests": _requests(browser),
            "broken_images": broken_images,
            "links": browser.execute_script("return Array.from(document.links).map(a => a.href)"),
            "ids": set(browser.execute_script("return Array.from(document.querySelectorAll('[id]')).map(e => e.id)")),
            "prose": browser.execute_script(PROSE),
            "text": browser.execute_script("return document.body.innerText"),
            "tex": browser.execute_script(
                "return Array.from(document.querySelectorAll('script[type^=\"math/tex\"]')).map(s => s.text).join(' ')"),
            "math": browser.execute_script("return document.querySelectorAll('.MathJax, .MathJax_Display').length"),
            "stderr": browser.execute_script(
                "return document.querySelectorAll('[data-mime-type=\"application/vnd.jupyter.stderr\"]').length"),
            "nav": browser.execute_script("return Array.from(document.querySelectorAll('nav.nni-nav a'))"
                                          ".map(a => a.textContent)"),
        }
        if name in SCREENSHOTS:
            _screenshot(browser, REPO / "reports" / "screenshots" / SCREENSHOTS[name])
    return _SEEN[name]


def _unresolved(seen: dict) -> list[str]:
    bad = []
    for href in seen["links"]:
        url = urlparse(href)
        if url.scheme in ("http", "https", "mailto"):
            continue  # outside the site (papers, projects): not followed offline
        if url.scheme != "file":
            bad.append(href)
            continue
        target = Path(unquote(url.path))
        if not target.exists():
            bad.append(href)
        elif url.fragment and target == seen["file"] and url.fragment not in seen["ids"]:
            bad.append(href)
    return bad


pages = pytest.mark.parametrize("page", PAGES, indirect=True)


@pages
def test_page_loads_offline_without_console_errors(page):
    assert page["console"] == []
    assert [u for u in page["requests"] if not u.startswith(("file:", "data:", "about:"))] == []


@pages
def test_every_image_loads_and_every_link_resolves(page):
    assert page["broken_images"] == []
    assert _unresolved(page) == []


@pages
def test_math_is_typeset_and_no_raw_tex_remains(page):
    assert RAW_TEX.findall(page["prose"]) == []
    assert "Math Processing Error" not in page["text"]
    if page["file"].parent.name == "html":
        source = (REPO / "notebooks" / f"{page['file'].stem}.ipynb").read_text(encoding="utf-8")
        markdown = [re.sub(r"`[^`]*`", "", "".join(c["source"]))
                    for c in json.loads(source)["cells"] if c["cell_type"] == "markdown"]
        if any(re.search(r"\$[^$\n]+\$", text) for text in markdown):
            assert page["math"] > 0


@pages
def test_no_stderr_blocks_test_markers_or_control_characters(page):
    assert page["stderr"] == 0
    assert "NBVAL_" not in page["text"]
    shown = page["prose"] + page["tex"]
    assert CONTROL.findall(shown) == []


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("html/")], indirect=True)
def test_reports_link_index_neighbours_and_notebooks(page):
    assert page["nav"][0] == "Index"
    assert "notebook (.ipynb)" in page["nav"] and "executed notebook" in page["nav"]
    slug = page["file"].stem
    position = SLUGS.index(slug)
    linked = {Path(urlparse(h).path).name for h in page["links"]}
    for neighbour in (SLUGS[position - 1] if position else None, SLUGS[position + 1] if position + 1 < len(SLUGS) else None):
        if neighbour:
            assert f"{neighbour}.html" in linked


def test_scorecard_sorts_by_a_clicked_column(tmp_path, monkeypatch, browser):
    from nn_interpretability.reports import save_scores, write_scorecard

    monkeypatch.setenv("NNI_REPORTS_DIR", str(tmp_path))
    rows = [{"method": "IG", "deletion": 0.2}, {"method": "Saliency", "deletion": 0.05}, {"method": "LRP"}]
    save_scores("faithfulness", rows, better={"deletion": "lower"}, notebook="18_evaluation")
    browser.get(write_scorecard(tmp_path).as_uri())
    order = "return Array.from(document.querySelectorAll('tbody tr')).map(r => r.cells[0].textContent)"
    header = browser.find_element("xpath", "//th[starts-with(normalize-space(.), 'deletion')]")
    header.click()
    assert browser.execute_script(order) == ["Saliency", "IG", "LRP"]  # ascending, the empty cell last
    header.click()
    assert browser.execute_script(order) == ["IG", "Saliency", "LRP"]
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
