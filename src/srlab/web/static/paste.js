/* srlab: paste an image into the demo's upload box.
 *
 * Ctrl+V / Cmd+V anywhere on the page (outside text fields), or the Paste button (which asks
 * the browser for the clipboard: phones show their own "Paste" prompt), hands the image to
 * the upload box's file input exactly as choosing the file would, so the same upload check
 * runs. Nothing is sent anywhere else.
 */
(function () {
  "use strict";

  function input() {
    return document.querySelector("#srlab-input input[type=file]");
  }

  function say(text) {  // the status line's shape (srlab.web.app.status_html)
    const status = document.querySelector("#srlab-status .srlab-state");
    if (!status) return;
    const line = document.createElement("div");
    line.className = "srlab-msg srlab-err";
    line.textContent = text;
    status.dataset.srlab = "error";
    status.dataset.event = "paste-" + Date.now();
    status.replaceChildren(line);
  }

  function give(files) {
    const el = input();
    const images = files.filter((f) => f.type.startsWith("image/"));
    if (!el || !images.length) return false;
    const dt = new DataTransfer();
    images.forEach((f, i) => {
      const ext = (f.type.split("/")[1] || "png").replace("jpeg", "jpg").replace(/\W/g, "");
      const name = f.name && f.name !== "image.png" ? f.name : `pasted-${i + 1}.${ext}`;
      dt.items.add(new File([f], name, { type: f.type }));
    });
    el.files = dt.files;
    el.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  document.addEventListener("paste", (ev) => {
    const t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA)$/.test(t.tagName) &&
              t.type !== "file")) return;
    const files = [...(ev.clipboardData ? ev.clipboardData.files : [])];
    if (give(files)) ev.preventDefault();
  });

  window.srlabPaste = async function () {
    if (!navigator.clipboard || !navigator.clipboard.read) {
      say("This browser does not let a page read the clipboard: press Ctrl+V (Cmd+V) " +
          "on the page, or choose the file.");
      return;
    }
    try {
      const files = [];
      for (const item of await navigator.clipboard.read()) {
        const type = item.types.find((t) => t.startsWith("image/"));
        if (type) files.push(new File([await item.getType(type)], "", { type }));
      }
      if (!give(files)) say("The clipboard holds no image: copy one first.");
    } catch (err) {
      say("The browser did not allow reading the clipboard: press Ctrl+V (Cmd+V) on " +
          "the page, or choose the file.");
    }
  };
})();
