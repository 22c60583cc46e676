/* Demo hall pages: login tabs, the CA login flow, and logout. Uses window.CertHelper
 * (certhelper.js, loaded from the helper before this file). */
(function () {
  "use strict";
  const $ = (sel) => document.querySelector(sel);
  const NO_HELPER = "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)";

  function show(kind, text) {
    const box = $("#status");
    if (!box) return;
    box.className = "status " + kind;
    box.textContent = text;
    box.hidden = false;
  }

  // --- login page ------------------------------------------------------------
  document.querySelectorAll(".tab").forEach((tab) => {
    tab.addEventListener("click", () => {
      document.querySelectorAll(".tab").forEach((t) => {
        const on = t === tab;
        t.classList.toggle("active", on);
        t.setAttribute("aria-selected", String(on));
        $("#tab-" + t.dataset.tab).hidden = !on;
      });
    });
  });

  const caLogin = $("#ca-login");
  if (caLogin) {
    caLogin.addEventListener("click", () => {
      $("#ca-choice").hidden = false;
      caLogin.classList.add("chosen");
    });
  }

  let busy = false;
  async function loginWithHebca() {
    if (busy) return;
    const button = $("#ca-hebca");
    busy = true;
    button.disabled = true;
    try {
      if (!window.CertHelper) throw new Error(NO_HELPER);
      show("info", "正在连接证书助手……");
      await window.CertHelper.ping();
      const res = await fetch("/ish/api/challenge", { cache: "no-store", credentials: "same-origin" });
      if (!res.ok) throw new Error("无法获取登录请求，请稍后重试");
      const { challenge } = await res.json();
      show("info", "请在证书助手窗口中选择证书，并输入 USB Key 密码……");
      const token = await window.CertHelper.authenticate(challenge);
      show("info", "正在验证证书……");
      const reply = await fetch("/ish/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ token: token }),
      });
      const body = await reply.json().catch(() => ({}));
      if (!reply.ok) {
        throw new Error((body.error && body.error.message) || "登录失败，请稍后重试");
      }
      show("ok", "登录成功，正在进入网上业务大厅……");
      window.location.assign(body.redirect || "/ish/home");
    } catch (e) {
      show("error", (e && e.message) || "登录失败，请稍后重试");
      if (e && e.code) $("#status").dataset.code = e.code;
    } finally {
      busy = false;
      button.disabled = false;
    }
  }
  const hebca = $("#ca-hebca");
  if (hebca) hebca.addEventListener("click", loginWithHebca);

  // --- logout: end the helper's login session too (at most 3 s), then the hall's -----
  const form = $("#logout-form");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const helperLogout = window.CertHelper ? window.CertHelper.logout() : Promise.resolve();
      const cap = new Promise((resolve) => setTimeout(resolve, 3000));
      Promise.race([helperLogout, cap])
        .catch(() => {})
        .then(() => form.submit());
    });
  }
})();
