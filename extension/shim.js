// MAIN world, document_start, only on the configured hall origins (manifest).
// Replaces WebSocket for exactly the legacy HEBCA URLs; every other URL gets
// the real WebSocket. Defines certhelperExtension.connect("native") for
// certhelper.js (the native API through the extension). Frames go to relay.js
// (isolated world) by postMessage; the origin is never sent from here: the
// service worker takes it from the browser. A socket refused before it opened
// closes with code 1006 and the refusal's code as its reason (e.g. host_missing).
(() => {
  "use strict";
  const RealWebSocket = window.WebSocket;
  const LEGACY = new Set(["ws://localhost:17212/test", "ws://127.0.0.1:17212/test"]);
  const TAG = "certhelper-ext";
  const sockets = new Map();
  let next = 1;

  function normal(url) {
    try { return new URL(String(url)).href; } catch (e) { return ""; }
  }

  class RelayedSocket extends EventTarget {
    constructor(url, protocol) {
      super();
      this.url = String(url);
      this.readyState = 0;
      this.protocol = "";
      this.extensions = "";
      this.bufferedAmount = 0;
      this.binaryType = "blob";
      this.onopen = this.onmessage = this.onerror = this.onclose = null;
      this._id = next++;
      sockets.set(this._id, this);
      this._error = "";
      window.postMessage({ [TAG]: "to-ext", id: this._id, op: "open", protocol }, "*");
    }
    send(data) {
      if (this.readyState === 0) throw new DOMException("Still in CONNECTING state.", "InvalidStateError");
      if (this.readyState !== 1) return;
      window.postMessage({ [TAG]: "to-ext", id: this._id, op: "send", data: String(data) }, "*");
    }
    close(code, reason) {
      if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
        throw new DOMException("The close code must be 1000 or 3000-4999.", "InvalidAccessError");
      }
      if (this.readyState >= 2) return;
      const wasConnecting = this.readyState === 0;
      this.readyState = 2;
      window.postMessage({ [TAG]: "to-ext", id: this._id, op: "close" }, "*");
      // like a real WebSocket: the close event comes later, not inside close()
      setTimeout(() => {
        if (wasConnecting) this._closed(1006, "", false, true);
        else this._closed(code === undefined ? 1005 : code, String(reason || ""), true, false);
      }, 0);
    }
    _fire(type, init) {
      const ev = type === "message" ? new MessageEvent("message", init)
        : type === "close" ? new CloseEvent("close", init) : new Event(type);
      const handler = this["on" + type];
      if (typeof handler === "function") handler.call(this, ev);
      this.dispatchEvent(ev);
    }
    _closed(code, reason, clean, failed) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      sockets.delete(this._id);
      if (failed) this._fire("error"); // refused, or the host/daemon went away
      this._fire("close", { code, reason, wasClean: !!clean });
    }
  }
  for (const [k, v] of [["CONNECTING", 0], ["OPEN", 1], ["CLOSING", 2], ["CLOSED", 3]]) {
    RelayedSocket[k] = v;
    RelayedSocket.prototype[k] = v;
  }

  window.addEventListener("message", (event) => {
    const m = event.data;
    if (event.source !== window || !m || m[TAG] !== "to-page") return;
    const sock = sockets.get(m.id);
    if (!sock) return;
    if (m.op === "opened" && sock.readyState === 0) {
      sock.readyState = 1;
      sock._fire("open");
    } else if (m.op === "frame" && sock.readyState === 1) {
      sock._fire("message", { data: m.data, origin: sock.url.replace(/\/test$/, "") });
    } else if (m.op === "error" && m.error && typeof m.error.code === "string") {
      sock._error = m.error.code;
    } else if (m.op === "closed") {
      sock._closed(m.code || 1006, m.reason || sock._error, false, sock.readyState !== 2);
    }
  });

  function WebSocketShim(url, protocols) {
    if (!new.target) throw new TypeError("Failed to construct 'WebSocket': Please use the 'new' operator");
    if (LEGACY.has(normal(url))) return new RelayedSocket(url, "hebca");
    return protocols === undefined ? new RealWebSocket(url) : new RealWebSocket(url, protocols);
  }
  WebSocketShim.prototype = RealWebSocket.prototype;
  Object.defineProperty(WebSocketShim, Symbol.hasInstance, {
    value: (x) => x instanceof RealWebSocket || x instanceof RelayedSocket,
  });
  for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) WebSocketShim[k] = RealWebSocket[k];
  window.WebSocket = WebSocketShim;
  Object.defineProperty(window, "certhelperExtension", {
    value: Object.freeze({
      version: 1,
      connect: (protocol) =>
        new RelayedSocket("certhelper-extension:" + protocol, protocol === "hebca" ? "hebca" : "native"),
    }),
    writable: false,
    configurable: false,
    enumerable: false,
  });
  document.documentElement.dataset.certhelperExtension = "1";
})();
