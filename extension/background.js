// The service worker: one native-messaging port per page socket. The origin is
// the browser's (sender.origin of the content script's port), never the page's.
"use strict";
const HOST = "org.certhelper.host";
const FATAL = ["origin_denied", "consent_denied", "daemon_unavailable", "frame_too_large"];
chrome.runtime.onConnect.addListener((port) => {
  const sender = port.sender || {};
  let origin = sender.origin;
  if (!origin && sender.url) origin = new URL(sender.url).origin;
  if (!origin || sender.id !== chrome.runtime.id || !sender.tab) { port.disconnect(); return; }
  const protocol = port.name === "native" ? "native" : "hebca";
  let opened = false;
  const native = chrome.runtime.connectNative(HOST);
  native.postMessage({ open: { origin, protocol } });
  native.onMessage.addListener((msg) => {
    if (msg && msg.opened) opened = true;
    port.postMessage(msg);
    // refused before it opened, or the daemon is gone: the page's socket closes
    if (msg && msg.error && !msg.frame && (!opened || FATAL.includes(msg.error.code))) {
      port.disconnect();
    }
  });
  native.onDisconnect.addListener(() => {
    // the host never ran (not registered: certhelper install / 检测修复) or died
    const why = (chrome.runtime.lastError && chrome.runtime.lastError.message) || "";
    if (!opened) {
      const code = /not found|forbidden/i.test(why) ? "host_missing" : "host_failed";
      try { port.postMessage({ error: { code } }); } catch (e) {}
    }
    try { port.disconnect(); } catch (e) {}
  });
  port.onMessage.addListener((msg) => {
    if (msg && typeof msg.frame === "string") native.postMessage({ frame: msg.frame });
  });
  port.onDisconnect.addListener(() => native.disconnect());
});
