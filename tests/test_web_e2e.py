"""The ``srlab serve`` UI in a real headless browser (Debian's chromium via Playwright).

Drives what a person does: open the page, upload a photo, press Upscale, look at the result
and download it, then ask for the training metrics. Uses the system chromium
(``apt-get install chromium``) — nothing is downloaded at run time, so no ``playwright
install``. The shipped-artifacts folder is pointed at a temporary one holding fake curves, so
the "Show training metrics" path is exercised whatever models ship today.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import BENCH

CHROMIUM = Path("/usr/bin/chromium")
BABY = BENCH / "Set5" / "baby.png"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK),
                       reason="needs Debian's chromium at /usr/bin/chromium "
                              "(apt-get install -y chromium)"),
    pytest.mark.skipif(not BABY.is_file(),
                       reason=f"{BABY} not found (set SRLAB_SHARED to the shared folder)"),
    # gradio's queue trips pandas 3 deprecation warnings; not ours to fix
    pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*"),
]
pytest.importorskip("gradio", reason="the web extra is not installed: pip install 'srlab[web]'")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed: pip install playwright")

from _web_server import running_server  # noqa: E402
from PIL import Image  # noqa: E402

from srlab import web  # noqa: E402


@pytest.fixture
def fake_artifacts(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "artifacts" / "bicubic_x2"
    folder.mkdir(parents=True)
    Image.new("RGB", (120, 80), (200, 30, 30)).save(folder / "loss.png")
    Image.new("RGB", (120, 80), (30, 30, 200)).save(folder / "psnr.png")
    frames = [Image.new("RGB", (64, 64), (c, c, c)) for c in (0, 128, 255)]
    frames[0].save(folder / "progress.gif", save_all=True, append_images=frames[1:],
                   duration=200, loop=0)
    (folder / "metrics.csv").write_text("epoch,loss,val_psnr\n1,0.1,30.0\n")
    monkeypatch.setattr(web, "SHIPPED_DIR", folder.parent)
    return folder


def test_upload_upscale_download_in_browser(tmp_path, fake_artifacts):
    crop = tmp_path / "baby_crop.png"
    with Image.open(BABY) as im:
        im.convert("RGB").crop((192, 192, 320, 320)).save(crop)  # 128 x 128: quick on CPU
    shot = tmp_path / "srlab-web.png"
    timeout = 60_000
    with running_server(web.Limits(concurrency=1, queue_size=4)) as base, \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(timeout)
            page.goto(f"{base}/?model=bicubic&scale=2")
            page.wait_for_function(
                "document.querySelector('#srlab-card')?.innerText.includes('bicubic ×2')")
            page.set_input_files("#srlab-input input[type=file]", str(crop))
            page.wait_for_selector("#srlab-input img")
            page.click("#srlab-run")
            page.wait_for_function(
                "document.querySelector('#srlab-status')?.innerText.includes('→')")
            status = page.inner_text("#srlab-status")
            assert "128 × 128 → 256 × 256" in status, status

            # the comparison shows images at full resolution
            page.wait_for_function(
                "[...document.querySelectorAll('#srlab-compare img')]"
                ".some(i => i.complete && i.naturalWidth === 256 && i.naturalHeight === 256)")

            # the download is the full-resolution PNG, with a readable file name
            link = page.wait_for_selector("#srlab-download a[download]")
            assert link.get_attribute("download") == "baby_crop_bicubic_x2.png"
            resp = page.request.get(link.get_attribute("href"))
            assert resp.ok
            with Image.open(io.BytesIO(resp.body())) as out:
                assert out.format == "PNG" and out.size == (256, 256)
                result = np.asarray(out.convert("RGB"))
            from srlab import load_model

            expected = load_model("bicubic", 2).upscale_array(
                np.asarray(Image.open(crop).convert("RGB")))
            np.testing.assert_array_equal(result, expected)

            # the self-ensemble box reaches the job: its result is named model+
            page.check("#srlab-ensemble input[type=checkbox]")
            page.click("#srlab-run")
            page.wait_for_function(
                "document.querySelector('#srlab-status')?.innerText.includes('bicubic+')")
            link = page.wait_for_selector("#srlab-download a[download*='bicubic+']")
            assert link.get_attribute("download") == "baby_crop_bicubic+_x2.png"

            # training metrics: curves and the progress GIF appear on demand
            page.click("#srlab-show-metrics")
            page.wait_for_function(
                "[...document.querySelectorAll('img')].filter(i => i.src.includes('.gif')"
                " || i.src.includes('loss')).some(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
