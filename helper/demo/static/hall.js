/* Demo hall pages: login tabs, the CA login flow, and logout. Uses window.CertHelper
 * (the hall's own copy of certhelper.js, loaded before this file, configured from
 * <meta name="certhelper">). When the helper is out of reach the page says why, offers
 * the one action that fixes it, and logs in by itself once the cause is gone. */
(function () {
  "use strict";
  const $ = (sel) => document.querySelector(sel);
  const NO_HELPER = "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)";
  // what fixes each cause: a certhelper:// link starts the helper, or opens 检测修复
  const ACTIONS = {
    helper_unreachable: ["certhelper://start", "启动证书助手 (start certhelper)"],
    helper_untrusted: ["certhelper://doctor", "打开检测修复 (open 检测修复)"],
    lna_blocked: ["certhelper://doctor", "打开检测修复 (open 检测修复)"],
    port_taken: ["certhelper://doctor", "打开检测修复 (open 检测修复)"],
    extension_host_missing: ["certhelper://doctor", "打开检测修复 (open 检测修复)"],
  };

  const meta = document.querySelector('meta[name="certhelper"]');
  if (window.CertHelper && meta) {
    window.CertHelper.configure({
      port: Number(meta.dataset.port),
      legacyPort: Number(meta.dataset.legacyPort),
    });
  }

  function show(kind, text, code) {
    const box = $("#status");
    if (!box) return;
    box.className = "status " + kind;
    box.textContent = text;
    box.hidden = false;
    if (code) box.dataset.code = code;
    else delete box.dataset.code;
    const action = ACTIONS[code];
    if (kind === "error" && action) {
      const a = document.createElement("a");
      a.id = "status-action";
      a.href = action[0];
      a.textContent = action[1];
      box.append(" ", a, "　本页会自动重新连接，无需刷新 (this page reconnects by itself)");
    }
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
  let waiting = false; // a whenReachable() poll runs: it retries the login when it succeeds
  function waitForHelper() {
    if (waiting) return;
    waiting = true;
    window.CertHelper.whenReachable({
      onStatus: (d) => {
        if (!d.ok) show("error", d.message, d.code);
      },
    }).then(
      () => {
        waiting = false;
        show("info", "已连接证书助手，正在继续登录…… (connected: logging in)");
        loginWithHebca();
      },
      () => {
        waiting = false;
        show("error", "仍无法连接证书助手，请按上面的提示处理后再点击「河北 CA」");
      }
    );
  }

  async function loginWithHebca() {
    if (busy) return;
    const button = $("#ca-hebca");
    busy = true;
    button.disabled = true;
    try {
      if (!window.CertHelper) throw new Error(NO_HELPER);
      show("info", "正在连接证书助手……");
      try {
        await window.CertHelper.ping();
      } catch (e) {
        if (e && ACTIONS[e.code]) waitForHelper(); // say why, then recover by itself
        throw e;
      }
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
      show("error", (e && e.message) || "登录失败，请稍后重试", e && e.code);
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
