"""Look at an HTML file as a reader does: rendered by headless Debian Chromium via Playwright.

Tests of the report assert on what a reader sees (text as laid out, plots drawn, the page
fitting a phone, a printable PDF), not on HTML source. Rendering runs in a child process
(``python -m selftest.browser``) in its own process group: Playwright's sync API has calls
without a timeout (evaluate, pdf), so the only wait that is sure to end is one on a process
that can be killed with everything it started. The child writes its findings (JSON, one
PNG per plot, the PDF) to a temporary folder that the parent reads back.

Use ``render(path)`` directly, or the ``browser`` fixture (import it into a conftest or a
test module): it fails the test, with what to do, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import attr
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHONE = (390, 844)  # CSS pixels of a common phone in portrait
TIMEOUT_S = 90.0  # the whole render: browser start, load, screenshots, PDF
_STEP_MS = 30_000  # each Playwright step that takes a timeout


class BrowserError(RuntimeError):
    """The page could not be rendered; the message says why and what to do."""


@attr.s(frozen=True)
class PlotView:
    """One plot element as drawn: where it sits on the page (CSS pixels) and its pixels."""

    name = attr.ib()
    x = attr.ib()
    y = attr.ib()
    width = attr.ib()
    height = attr.ib()
    png = attr.ib(repr=False)

    def colours(self, limit: int = 4096) -> int:
        """How many distinct colours the screenshot has (``limit`` + 1 meaning more)."""
        from PIL import Image

        with Image.open(io.BytesIO(self.png)) as img:
            found = img.convert("RGB").getcolors(maxcolors=limit)
        return len(found) if found is not None else limit + 1


@attr.s(frozen=True)
class PageView:
    """What a reader of the page sees at ``viewport_width``."""

    text = attr.ib(repr=False)  # document.body.innerText
    viewport_width = attr.ib()
    scroll_width = attr.ib()  # the page's width as laid out; > viewport_width = sideways scrolling
    plots = attr.ib()  # PlotView per plot element, in page order
    elements = attr.ib()  # selector -> [{"text", "attrs", "color"}] for the selectors asked for
    pdf_size = attr.ib()  # bytes of the page printed to PDF (A4)
    pdf_pages = attr.ib()

    def plot(self, name: str) -> PlotView:
        found = [p for p in self.plots if p.name == name]
        if not found:
            raise KeyError(f"no plot {name!r} on the page; plots: {[p.name for p in self.plots]}")
        return found[0]


def render(html: Path | str, *, width: int = PHONE[0], height: int = PHONE[1], selectors=(),
           plot_selector: str = "figure.plot", plot_name: str = "data-plot",
           timeout: float = TIMEOUT_S) -> PageView:
    """Render ``html`` in headless Chromium and return what a reader sees.

    ``selectors``: CSS selectors whose elements' text, attributes and computed colour are
    returned in ``elements``; plots are the ``plot_selector`` elements, named by their
    ``plot_name`` attribute.
    """
    check_chromium()
    html = Path(html).resolve()
    if not html.is_file():
        raise BrowserError(f"no HTML file at {html}")
    with tempfile.TemporaryDirectory(prefix="browser-") as tmp:
        job = {"html": str(html), "width": width, "height": height, "selectors": list(selectors),
               "plot_selector": plot_selector, "plot_name": plot_name, "out": tmp}
        proc = subprocess.Popen([sys.executable, "-m", "selftest.browser", json.dumps(job)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parent.parent, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise BrowserError(f"rendering {html.name} in Chromium took longer than {timeout:g} s; "
                               "the browser was killed") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.returncode != 0:
            raise BrowserError(f"rendering {html.name} in Chromium failed (exit {proc.returncode}): "
                               f"{(err or out).strip()[-3000:]}")
        found = json.loads((Path(tmp) / "result.json").read_text())
        plots = [PlotView(p["name"], p["x"], p["y"], p["width"], p["height"], (Path(tmp) / p["png"]).read_bytes())
                 for p in found["plots"]]
        return PageView(found["text"], width, found["scroll_width"], plots, found["elements"],
                        found["pdf_size"], found["pdf_pages"])


def check_chromium() -> None:
    """Raise BrowserError naming the fix when Chromium or Playwright is not installed."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        raise BrowserError(f"Chromium is not installed at {CHROMIUM}: run scripts/setup "
                           "(it installs Debian's chromium package)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        raise BrowserError(f"the playwright Python package is missing ({e}): run scripts/setup") from e


@pytest.fixture
def browser():
    """``render`` (see above); fails the test with what to do when Chromium is missing."""
    try:
        check_chromium()
    except BrowserError as e:
        pytest.fail(str(e), pytrace=False)
    return render


# the child process -------------------------------------------------------------------------
_ELEMENTS_JS = """els => els.map(e => ({
    text: e.innerText,
    attrs: Object.fromEntries(Array.from(e.attributes).map(a => [a.name, a.value])),
    color: getComputedStyle(e).color,
}))"""


_BOX_JS = """e => { const r = e.getBoundingClientRect();
    return {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height}; }"""


def _render_here(job: dict) -> dict:
    """The Playwright part, run in the child process."""
    from playwright.sync_api import sync_playwright

    out = Path(job["out"])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=_STEP_MS)
        try:
            page = browser.new_page(viewport={"width": job["width"], "height": job["height"]})
            page.set_default_timeout(_STEP_MS)
            page.goto(Path(job["html"]).as_uri(), wait_until="load", timeout=_STEP_MS)
            text = page.evaluate("document.body.innerText")
            scroll_width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
            elements = {sel: page.eval_on_selector_all(sel, _ELEMENTS_JS) for sel in job["selectors"]}
            plots = []
            locator = page.locator(job["plot_selector"])
            for i in range(locator.count()):
                element = locator.nth(i)
                element.scroll_into_view_if_needed(timeout=_STEP_MS)
                box = element.evaluate(_BOX_JS, timeout=_STEP_MS)
                png = f"plot-{i}.png"
                element.screenshot(path=str(out / png), timeout=_STEP_MS, animations="disabled")
                plots.append({"name": element.get_attribute(job["plot_name"], timeout=_STEP_MS), "png": png,
                              **{k: box[k] for k in ("x", "y", "width", "height")}})
            pdf = page.pdf(format="A4", print_background=False)
            (out / "page.pdf").write_bytes(pdf)
        finally:
            browser.close()
    return {"text": text, "scroll_width": scroll_width, "elements": elements, "plots": plots,
            "pdf_size": len(pdf), "pdf_pages": _pdf_pages(pdf)}


def _pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    result = _render_here(job)
    (Path(job["out"]) / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
