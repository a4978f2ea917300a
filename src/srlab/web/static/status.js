/* srlab: keep the status line where the user is looking.
 *
 * The status line (srlab.web.app.status_html) sits right under the Upscale button; on a
 * phone that can still be below the screen's edge after picking a file. Whenever an upload
 * check, a paste or a press of Upscale writes a new answer (a new data-event), the line is
 * scrolled just into view if it is not on screen: an error is never out of sight.
 */
(function () {
  "use strict";

  let last = "load";

  function check() {
    const s = document.querySelector("#srlab-status .srlab-state");
    if (!s || s.dataset.event === last) return;
    last = s.dataset.event;
    if (last === "load") return;
    const box = document.querySelector("#srlab-status");  // the whole block, padding too
    const r = box.getBoundingClientRect();
    if (r.height && (r.top < 0 || r.bottom > window.innerHeight))
      box.scrollIntoView({ behavior: "instant", block: "nearest" });
  }

  new MutationObserver(check).observe(document.documentElement,
                                      { childList: true, subtree: true, attributes: true,
                                        attributeFilter: ["data-event"] });
})();
