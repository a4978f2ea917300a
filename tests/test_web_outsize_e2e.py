"""The demo's Output size control and its denoise slider in real Chromium (issues 53, 50).

The same server, browser and waits as test_web_e2e.py (imported from there: every wait is
for a state the page reports). What a person does: pick "Factor" and type 1.5, or "Fit in
box" and type 200x150, press Upscale, and get that exact size, told what ran in the CLI's
words, with the HTTP API's pixels; type a bad value and read the API's sentence where they
are looking (a phone included); run auto and see on the slider the strength it ran.
"""

# ruff: noqa: F811  # test_web_e2e's fixtures, imported by name, are the tests' parameters
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from test_web_e2e import (  # noqa: F401  (the fixtures are used by name)
    _ANSWER,
    JOB_TIMEOUT_MS,
    _event,
    _open,
    _run,
    _settled,
    _state,
    _status,
    _upload,
    base,
    browser,
    crops,
    page,
    pytestmark,
)

_BOX = "#srlab-size input, #srlab-size textarea"


def _size(page, mode_label: str, text: str, placeholder: str) -> None:
    """Pick the Output size mode and type ``text`` in its box (shown for that mode)."""
    page.click(f"#srlab-size-mode label:has-text('{mode_label}')")
    page.wait_for_function(  # the box the mode asks for, not the previous mode's
        f"() => {{ const b = document.querySelector('{_BOX}');"
        f" return b && b.offsetParent && b.placeholder === 'e.g. {placeholder}'; }}")
    page.fill(_BOX, text)


def _download(page, name: str) -> np.ndarray:
    link = page.wait_for_selector(f"#srlab-download a[download='{name}']")
    resp = page.request.get(link.get_attribute("href"))
    assert resp.ok
    with Image.open(io.BytesIO(resp.body())) as im:
        return np.asarray(im.convert("RGB"))


def _api(page, base: str, query: str, path) -> tuple[np.ndarray, dict]:
    r = page.request.post(f"{base}/api/upscale?{query}", multipart={
        "file": {"name": path.name, "mimeType": f"image/{path.suffix[1:]}",
             "buffer": path.read_bytes()}})
    assert r.ok, r.text()
    with Image.open(io.BytesIO(r.body())) as im:
        return np.asarray(im.convert("RGB")), r.headers


def test_factor_and_fit_give_that_size_and_say_what_ran(page, base, crops):
    eye = crops["eye"]  # 96 x 96
    _open(page, f"{base}/?model=span&scale=4", "span ×4")
    _upload(page, eye)
    _size(page, "Factor", "1.5", "1.5")
    status = _run(page)
    assert "96 × 96 → 144 × 144" in status, status
    assert "Ran: span x2 -> resize to 1.5x (144x144)" in status, status
    ui = _download(page, "eye_span_x1.5.png")
    assert ui.shape == (144, 144, 3)
    api, headers = _api(page, base, "model=span&scale=1.5", eye)
    np.testing.assert_array_equal(ui, api)  # the API's planner, resize and pixels
    assert headers["x-srlab-ran"] == "span x2 -> resize to 1.5x (144x144)"
    # the comparison shows both sides at the result's size
    page.wait_for_function("[...document.querySelectorAll('#srlab-compare img')]"
                           ".filter(i => i.complete && i.naturalWidth === 144).length === 2")

    _size(page, "Fit in box", "200x150", "1920x1080")
    status = _run(page)
    assert "96 × 96 → 150 × 150" in status, status
    assert "Ran: span x2 -> resize to fit 200x150 (150x150)" in status, status
    ui = _download(page, "eye_span_fit200x150.png")
    assert ui.shape == (150, 150, 3)
    api, _ = _api(page, base, "model=span&fit=200x150", eye)
    np.testing.assert_array_equal(ui, api)

    # back to the model's own scale: the Scale radio's x4, no resize, no "Ran"
    page.click("#srlab-size-mode label:has-text(\"Model's scale\")")
    page.wait_for_selector(_BOX, state="hidden")
    status = _run(page)
    assert "96 × 96 → 384 × 384" in status and "Ran:" not in status, status


def test_a_bad_size_is_the_api_sentence_where_a_phone_user_looks(page, base, crops):
    page.set_viewport_size({"width": 390, "height": 844})
    _open(page, f"{base}/?model=bicubic&scale=2", "bicubic ×2")
    _upload(page, crops["eye"])
    for mode, text, placeholder, query in (("Factor", "abc", "1.5", "scale=abc"),
                                           ("Fit in box", "1920", "1920x1080", "fit=1920"),
                                           ("Width", "50", "1920", "width=50")):
        _size(page, mode, text, placeholder)
        page.evaluate("window.scrollTo(0, 0)")
        seen = _event(page)
        page.click("#srlab-run")
        page.wait_for_function(_ANSWER, arg=[seen, ["error", "done", "queued", "running"]],
                               timeout=JOB_TIMEOUT_MS)
        assert _state(page) == "error", _status(page)
        shown = _status(page).strip()
        r = page.request.post(f"{base}/api/upscale?model=bicubic&{query}", multipart={
            "file": {"name": "eye.png", "mimeType": "image/png",
                     "buffer": crops["eye"].read_bytes()}})
        assert r.status == 400 and shown == r.json()["error"], (shown, r.text())
        assert "Traceback" not in shown and page.locator(".toast-body").count() == 0
        assert page.is_disabled("#srlab-cancel")  # nothing was queued
        _settled(page, "#srlab-status")
        box = page.locator("#srlab-status").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 845, box  # on screen
    assert "already larger than width 50" in shown


# every label of the size control shows whole, in every mode
_SIZE_CUT = """() => {
  const cut = [];
  const check = (el, what) => { if (el && el.scrollWidth > el.clientWidth + 1) cut.push(what); };
  const group = document.querySelector('#srlab-size-box').getBoundingClientRect();
  document.querySelectorAll('#srlab-size-mode label, #srlab-size-mode span, '
                            + '#srlab-size span, #srlab-size input').forEach(el => {
    check(el, el.innerText || el.placeholder);
    const r = el.getBoundingClientRect();
    if (r.width && (r.left < group.left - 1 || r.right > group.right + 1))
      cut.push('outside: ' + (el.innerText || el.placeholder));
  });
  return cut;
}"""


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_the_size_control_fits_its_labels(page, base, width, height):
    page.set_viewport_size({"width": width, "height": height})
    _open(page, f"{base}/?model=span&scale=4", "span ×4")
    assert page.evaluate(_SIZE_CUT) == []
    for mode, placeholder in (("Factor", "1.5"), ("Width", "1920"), ("Height", "1080"),
                              ("Fit in box", "1920x1080")):
        _size(page, mode, "", placeholder)
        assert page.evaluate(_SIZE_CUT) == [], mode
        label = page.inner_text("#srlab-size")
        assert mode.split()[0] in label, label


def test_the_denoise_slider_shows_the_strength_auto_ran(page, base, crops):
    """The bug (issue 50): the slider said 0.5 while auto ran 0. After a run it shows the
    strength auto ran on the image shown and why (the API's X-Srlab-Denoise and -Reason),
    and follows the "Showing" picker through a batch."""
    _open(page, base, "auto ×4")
    assert page.is_checked("#srlab-denoise-auto input[type=checkbox]")
    batch = (crops["baby_crop"], crops["web"])  # a clean PNG, a quality-35 JPEG
    _upload(page, *batch, expect="2 images ready")
    _run(page, "chose")
    strengths = []
    for i, crop in enumerate(batch):
        if i:  # the batch's second image: the slider follows the picker
            page.click("#srlab-pick input")
            page.click(f"#srlab-pick [role=option]:has-text('{crop.name}')")
        _, headers = _api(page, base, "model=auto&scale=4", crop)
        want = float(headers["x-srlab-denoise"])
        said = f"auto ran {want:g} on {crop.name}: {headers['x-srlab-reason']}"
        page.wait_for_function(  # the slider's line under its label, then its track
            "t => document.querySelector('#srlab-denoise').innerText.includes(t)", arg=said)
        track = page.get_attribute("#srlab-denoise input[type=range]", "style")
        assert f"--range_progress: {want * 100:g}%" in track, (track, want)
        strengths.append(want)
    assert strengths[0] != strengths[1], strengths  # the slider moved with auto's reading
    assert page.is_checked("#srlab-denoise-auto input[type=checkbox]")  # still auto's
