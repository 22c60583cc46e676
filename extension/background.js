// The service worker: one native-messaging port per page socket. The origin is
// the browser's (sender.origin of the content script's port), never the page's.
"use strict";
const HOST = "org.certhelper.host";
chrome.runtime.onConnect.addListener((port) => {
  const sender = port.sender || {};
  let origin = sender.origin;
  if (!origin && sender.url) origin = new URL(sender.url).origin;
  if (!origin || sender.id !== chrome.runtime.id || !sender.tab) { port.disconnect(); return; }
  const protocol = port.name === "native" ? "native" : "hebca";
  const native = chrome.runtime.connectNative(HOST);
  native.postMessage({ open: { origin, protocol } });
  native.onMessage.addListener((msg) => {
    if (msg && msg.error && !msg.frame) {
      port.postMessage(msg);
      if (["origin_denied", "consent_denied", "daemon_unavailable"].includes(msg.error.code)) port.disconnect();
      return;
    }
    port.postMessage(msg);
  });
  native.onDisconnect.addListener(() => { try { port.disconnect(); } catch (e) {} });
  port.onMessage.addListener((msg) => {
    if (msg && typeof msg.frame === "string") native.postMessage({ frame: msg.frame });
  });
  port.onDisconnect.addListener(() => native.disconnect());
});
