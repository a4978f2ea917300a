/* srlab comparison viewer: bicubic (left of the divider) against the model (right), with
 * zoom (mouse wheel, pinch, buttons, 1:1 for real pixels) and pan (drag).
 *
 * Zoom and pan are Panzoom 4 (MIT, vendored beside this file as panzoom.min.js); this file
 * only stacks the two images under one transform and clips the top one at the divider, so
 * both always show the same pixels. The server renders the markup (srlab.web.app); this
 * script wires every `.srlab-cmp` element it finds, again whenever Gradio replaces it.
 */
(function () {
  "use strict";

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  function setup(root) {
    if (!window.Panzoom || root.dataset.wired === root.dataset.key) return;
    root.dataset.wired = root.dataset.key;
    const stage = root.querySelector(".srlab-stage");
    const layer = root.querySelector(".srlab-pz");
    const before = root.querySelector(".srlab-before");
    const divider = root.querySelector(".srlab-divider");
    const readout = root.querySelector(".srlab-zoom");
    const w = Number(root.dataset.w), h = Number(root.dataset.h);
    let split = 0.5; // divider position, as a fraction of the stage width
    // origin 50% 50% (Panzoom's default, which its wheel/pinch focal maths assume): an image
    // point u is drawn at w/2 + s * (u - w/2 + x) from the stage's left edge
    // a new result below the fold (a phone): bring it on screen. Only when it arrives, not
    // when Upscale is pressed: until then the progress and any error are under the button
    if (root.getBoundingClientRect().top > window.innerHeight * 0.6)
      root.scrollIntoView({ behavior: "smooth", block: "start" });
    const pz = window.Panzoom(layer, { canvas: true, maxScale: 32, minScale: 0.01,
                                       step: 0.3, cursor: "grab" });
    root.srlabPanzoom = pz; // for tests and the console

    function toImage(px, s, off, size) { return (px - size / 2) / s + size / 2 - off; }

    function update() {
      const s = pz.getScale(), p = pz.getPan();
      const dx = split * stage.clientWidth;
      const u = clamp(toImage(dx, s, p.x, w), 0, w);
      before.style.clipPath = "inset(0 " + (w - u) + "px 0 0)";
      divider.style.left = dx + "px";
      readout.textContent = Math.round(s * 100) + "%";
      root.dataset.scale = s.toFixed(4);
    }

    function zoomAround(s, cx, cy) {
      const s0 = pz.getScale(), p = pz.getPan();
      const u = toImage(cx, s0, p.x, w), v = toImage(cy, s0, p.y, h);
      s = clamp(s, 0.01, 32);
      pz.zoom(s, { animate: false, force: true });
      pz.pan((cx - w / 2) / s + w / 2 - u, (cy - h / 2) / s + h / 2 - v,
             { animate: false, force: true });
      update();
    }

    function fitScale() { return Math.min(stage.clientWidth / w, stage.clientHeight / h); }

    function center(s) {
      pz.zoom(s, { animate: false, force: true });
      pz.pan((stage.clientWidth - w) / 2 / s, (stage.clientHeight - h) / 2 / s,
             { animate: false, force: true });
      update();
    }

    layer.addEventListener("panzoomchange", update);
    stage.addEventListener("wheel", function (e) { pz.zoomWithWheel(e); });
    stage.addEventListener("dblclick", function (e) {
      const r = stage.getBoundingClientRect();
      zoomAround(pz.getScale() < 0.999 ? 1 : fitScale(), e.clientX - r.left, e.clientY - r.top);
    });

    let dragging = false;
    divider.addEventListener("pointerdown", function (e) {
      e.preventDefault();
      e.stopPropagation();
      dragging = true;
      divider.setPointerCapture(e.pointerId);
    });
    divider.addEventListener("pointermove", function (e) {
      if (!dragging) return;
      const r = stage.getBoundingClientRect();
      split = clamp((e.clientX - r.left) / r.width, 0, 1);
      update();
    });
    divider.addEventListener("pointerup", function () { dragging = false; });
    divider.addEventListener("keydown", function (e) {
      if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
        split = clamp(split + (e.key === "ArrowLeft" ? -0.05 : 0.05), 0, 1);
        update();
        e.preventDefault();
      }
    });

    root.querySelectorAll("[data-act]").forEach(function (b) {
      b.addEventListener("click", function () {
        touched = true;
        const act = b.dataset.act, cx = stage.clientWidth / 2, cy = stage.clientHeight / 2;
        if (act === "fit") center(fitScale());
        else if (act === "1:1") zoomAround(1, cx, cy);
        else if (act === "in") zoomAround(pz.getScale() * 1.5, cx, cy);
        else if (act === "out") zoomAround(pz.getScale() / 1.5, cx, cy);
      });
    });

    // the first view, kept through layout changes until the user zooms or pans: real
    // pixels when they fit, else the whole image
    let touched = false;
    ["pointerdown", "wheel", "touchstart"].forEach(function (t) {
      stage.addEventListener(t, function () { touched = true; }, { passive: true });
    });
    // (after a timeout: Panzoom applies its own start position in one)
    new ResizeObserver(function () {
      setTimeout(function () {
        if (stage.clientWidth === 0) return;
        if (touched) update();
        else center(Math.min(1, fitScale()));
      }, 0);
    }).observe(stage);
  }

  function scan() { document.querySelectorAll(".srlab-cmp").forEach(setup); }
  new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true });
  scan();
})();
