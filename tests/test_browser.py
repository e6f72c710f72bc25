"""A real browser (headless Chromium) renders the score report and the benchmark report:
every image loads, the console shows no error, the sortable tables sort, and a
screenshot is not blank.  Skips when Chromium is absent (`make setup` installs it
with apt where it can)."""

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_bench_report import make_bench_report
from test_stream_score import make_score_report, model_dir  # noqa: F401  (model_dir is a fixture)

CHROMIUM = next((p for p in (os.environ.get("GANAD_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                             shutil.which("chromium-browser"), shutil.which("google-chrome")) if p and os.path.exists(p)),
                None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]

# Injected first in <head> of a copy of the page: records script errors, failed
# resource loads and console.error calls; on load checks every <img>, clicks the
# headers of each sortable table and checks the order, and writes the result into
# the DOM (and document.title) for --dump-dom to carry out.
CHECK = r"""<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (ev) {
    var t = ev.target;
    errors.push(t && t !== window && t.src ? "failed to load " + t.src : String(ev.message));
  }, true);
  var ce = console.error;
  console.error = function () { errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); ce.apply(console, arguments); };
  function column(table, col) {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      var c = r.cells[col], v = c.getAttribute("data-v");
      return v === null ? c.textContent : parseFloat(v);
    });
  }
  function ordered(vals, asc) {
    for (var i = 1; i < vals.length; i++) {
      var a = vals[i - 1], b = vals[i], c = (typeof a === "number" && typeof b === "number") ? a - b : String(a).localeCompare(String(b));
      if (asc ? c > 0 : c < 0) return false;
    }
    return true;
  }
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (im) { return !im.complete || im.naturalWidth === 0; })
                     .map(function (im) { return im.getAttribute("src"); });
    var sorts = [];
    document.querySelectorAll("table.sortable").forEach(function (table) {
      var heads = table.tHead.rows[0].cells;
      for (var col = 0; col < heads.length; col++) {
        var name = heads[col].textContent;
        heads[col].click();
        var asc = ordered(column(table, col), true) && heads[col].getAttribute("aria-sort") === "ascending";
        heads[col].click();
        var desc = ordered(column(table, col), false) && heads[col].getAttribute("aria-sort") === "descending";
        sorts.push({table: table.id, column: name, rows: table.tBodies[0].rows.length, asc: asc, desc: desc});
      }
    });
    var out = document.createElement("pre");
    out.id = "ganad-check";
    out.textContent = JSON.stringify({images: imgs.length, broken: broken, errors: errors, sorts: sorts,
                                      widths: imgs.map(function (im) { return im.naturalWidth; })});
    document.body.appendChild(out);
    document.title = "ganad-check-done";
  });
})();
</script>"""


def chromium(*args: str, tmp: Path, timeout: int = 60) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=timeout)


def screenshot(page: Path, png: Path, tmp: Path, size: str = "1200,1600") -> Path:
    r = chromium(f"--screenshot={png}", f"--window-size={size}", "--virtual-time-budget=5000", page.resolve().as_uri(),
                 tmp=tmp)
    assert png.is_file(), r.stderr[-2000:]
    return png


def check_page(index: Path, tmp: Path) -> dict:
    """Render a copy of ``index`` with :data:`CHECK` injected; return what it found, plus the
    console lines Chromium logged."""
    text = index.read_text(encoding="utf-8")
    probe = index.with_name("_browser_check.html")  # beside the page: its relative <img> paths resolve
    probe.write_text(text.replace("<head>", "<head>\n" + CHECK, 1), encoding="utf-8")
    try:
        r = chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
                     probe.resolve().as_uri(), tmp=tmp)
    finally:
        probe.unlink()
    m = re.search(r'<pre id="ganad-check">(.*?)</pre>', r.stdout, re.DOTALL)
    assert m, f"the check did not run; stderr: {r.stderr[-2000:]}"
    result = json.loads(html.unescape(m.group(1)))
    result["console"] = [line for line in r.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return result


def assert_page_is_sound(index: Path, tmp: Path, min_images: int, tables: dict[str, int]) -> dict:
    page = index.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from the network
    res = check_page(index, tmp)
    assert res["images"] >= min_images and not res["broken"], res
    assert all(w > 0 for w in res["widths"]), res["widths"]
    assert not res["errors"] and not res["console"], (res["errors"], res["console"])
    for table_id, n_rows in tables.items():
        cols = [s for s in res["sorts"] if s["table"] == table_id]
        assert cols and all(s["rows"] == n_rows for s in cols), (table_id, cols)
        assert all(s["asc"] and s["desc"] for s in cols), [s for s in cols if not (s["asc"] and s["desc"])]
    shot = screenshot(index, tmp / f"{index.parent.name}.png", tmp)
    with Image.open(shot) as im:
        assert im.size == (1200, 1600)
        pixels = np.asarray(im.convert("L"), dtype=np.float32)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # text and figures were drawn, not a blank page
    return res


def test_score_report_in_chromium(tmp_path, model_dir, digits_split):  # noqa: F811
    out = make_score_report(tmp_path, model_dir, digits_split)
    res = assert_page_is_sound(out / "index.html", tmp_path, min_images=4, tables={"scores": 40})
    assert {s["column"] for s in res["sorts"]} >= {"rank", "path", "score", "flag", "label"}


def test_bench_report_in_chromium(tmp_path):
    out = make_bench_report(tmp_path)
    res = assert_page_is_sound(out / "index.html", tmp_path, min_images=4, tables={"speed": 1})
    assert len({s["table"] for s in res["sorts"]}) == 5  # three per-class tables, the OOD table, speed
