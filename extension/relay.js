// Isolated world: carries the page's socket operations to the service worker,
// one runtime port per page socket. The page's messages carry no origin we use.
(() => {
  "use strict";
  const TAG = "certhelper-ext";
  const ports = new Map();
  function toPage(msg) { window.postMessage(Object.assign({ [TAG]: "to-page" }, msg), "*"); }
  window.addEventListener("message", (event) => {
    const m = event.data;
    if (event.source !== window || !m || m[TAG] !== "to-ext" || typeof m.id !== "number") return;
    if (m.op === "open" && !ports.has(m.id)) {
      const protocol = m.protocol === "native" ? "native" : "hebca";
      const port = chrome.runtime.connect({ name: protocol });
      ports.set(m.id, port);
      port.onMessage.addListener((msg) => {
        if (msg.opened) toPage({ id: m.id, op: "opened" });
        else if (typeof msg.frame === "string") toPage({ id: m.id, op: "frame", data: msg.frame });
        else if (msg.error && !msg.opened) toPage({ id: m.id, op: "error", error: msg.error });
      });
      port.onDisconnect.addListener(() => {
        ports.delete(m.id);
        toPage({ id: m.id, op: "closed", code: 1006 });
      });
    } else if (m.op === "send" && ports.has(m.id) && typeof m.data === "string") {
      ports.get(m.id).postMessage({ frame: m.data });
    } else if (m.op === "close" && ports.has(m.id)) {
      ports.get(m.id).disconnect();
      ports.delete(m.id);
    }
  });
})();
