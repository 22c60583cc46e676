/* The demo hall's legacy login page (/ish/legacy): the old hall's way of logging in, over
 * the HEBCA-compatible endpoint with hebca-legacy-client.js (loaded before this file).
 * The sequence is section 8 of the protocol description: challenge from the hall,
 * GetSignCert, Login (PIN from the page) or UILogin (the helper's dialog), SignText over
 * the challenge, GetCertB64, then POST /ish/api/legacy/login. The PIN is never logged,
 * kept or sent anywhere but to the helper, and the field is cleared after each try. */
(function () {
  "use strict";
  const $ = (sel) => document.querySelector(sel);
  const root = $("#legacy");
  if (!root || !window.HebcaLegacyClient) return;

  const client = new window.HebcaLegacyClient({ port: root.dataset.hebcaPort });
  const helper = window.CertHelper; // the hall's copy of certhelper.js: diagnose() only
  if (helper) helper.configure({ legacyPort: Number(root.dataset.hebcaPort) });
  const UNREACHABLE = [1004, 1009]; // the protocol's "cannot open / no response"
  const DOCTOR = ["certhelper://doctor", "打开检测修复 (open 检测修复)"];
  const ACTIONS = {
    helper_unreachable: ["certhelper://start", "启动证书助手 (start certhelper)"],
    lna_blocked: DOCTOR,
    port_taken: DOCTOR,
    extension_host_missing: DOCTOR,
  };
  let waiting = false;
  const select = $("#cert-select");
  const pinInput = $("#cert-pin");
  const buttons = [$("#legacy-login"), $("#legacy-uilogin"), $("#cert-refresh")];
  let busy = false;

  function show(kind, text, ret) {
    const box = $("#status");
    box.className = "status " + kind;
    box.textContent = text;
    box.hidden = false;
    delete box.dataset.code;
    if (ret === undefined) delete box.dataset.ret;
    else box.dataset.ret = String(ret);
  }

  // Out of reach: say why (helper not running, blocked by the browser, port taken), offer
  // the fix, and reload the list by itself once the endpoint answers.
  async function diagnoseAndWait(fallback) {
    if (!helper) return show("error", fallback);
    const d = await helper.diagnose({ legacy: true });
    if (d.ok) return show("error", fallback);
    showCause(d);
    if (waiting) return;
    waiting = true;
    helper.whenReachable({ legacy: true, onStatus: (s) => s.ok || showCause(s) }).then(
      () => {
        waiting = false;
        loadCertificates();
      },
      () => {
        waiting = false;
      }
    );
  }

  function showCause(d) {
    show("error", d.message);
    const box = $("#status");
    box.dataset.code = d.code;
    const action = ACTIONS[d.code];
    if (action) {
      const a = document.createElement("a");
      a.id = "status-action";
      a.href = action[0];
      a.textContent = action[1];
      box.append(" ", a, "　本页会自动重新连接，无需刷新 (this page reconnects by itself)");
    }
  }

  function hide() {
    $("#status").hidden = true;
  }

  function setBusy(on) {
    busy = on;
    buttons.forEach((b) => {
      b.disabled = on;
    });
  }

  function option(value, text, cn, notAfter) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    if (cn !== undefined) o.dataset.cn = cn;
    if (notAfter !== undefined) o.dataset.notAfter = notAfter;
    return o;
  }

  function showExpiry() {
    const chosen = select.selectedOptions[0];
    const info = $("#cert-info");
    const notAfter = chosen && chosen.dataset.notAfter;
    info.textContent = notAfter
      ? (expired(notAfter) ? "证书已过期：" : "证书有效期至：") + notAfter
      : "";
    info.classList.toggle("expired", Boolean(notAfter) && expired(notAfter));
  }

  // certnotafter is "YYYY-MM-DD HH:MM:SS" in China Standard Time
  function expired(notAfter) {
    const when = Date.parse(String(notAfter).replace(" ", "T") + "+08:00");
    return !Number.isNaN(when) && when < Date.now();
  }

  async function loadCertificates() {
    if (busy) return;
    setBusy(true);
    select.disabled = true;
    select.replaceChildren(option("", "正在读取证书……"));
    hide();
    try {
      const { count } = await client.call("GetSignCertCount", null);
      const found = [];
      for (let i = 0; i < count; i++) {
        await client.call("GetSignCert", { index: i });
        const { content } = await client.call("GetSubjectItem", { index: 0 });
        const { certnotafter } = await client.call("GetSignCertNotAfter", { index: i });
        const label = content + (expired(certnotafter) ? "（已过期）" : "");
        found.push(option(String(i), label, content, String(certnotafter)));
      }
      if (found.length === 0) {
        select.replaceChildren(option("", "未找到证书，请插入 USB Key 后点击“刷新”"));
        return;
      }
      const first = found.length === 1 ? [] : [option("", "请选择证书")];
      select.replaceChildren(...first, ...found);
      select.disabled = false;
    } catch (e) {
      select.replaceChildren(option("", "无法读取证书"));
      if (e && UNREACHABLE.indexOf(e.ret) >= 0) await diagnoseAndWait(e.msg || e.message);
      else show("error", e.msg || e.message || "无法读取证书", e.ret);
    } finally {
      showExpiry();
      setBusy(false);
    }
  }

  async function logIn(withDialog) {
    if (busy) return;
    const chosen = select.selectedOptions[0];
    if (select.disabled || !chosen || chosen.value === "") {
      show("error", "请选择证书");
      return;
    }
    if (!withDialog && pinInput.value === "") {
      show("error", "请输入证书密码");
      pinInput.focus();
      return;
    }
    setBusy(true);
    try {
      show("info", "正在获取登录请求……");
      const res = await fetch("/ish/api/legacy/challenge", {
        cache: "no-store",
        credentials: "same-origin",
      });
      if (!res.ok) throw new Error("无法获取登录请求，请稍后重试");
      const { challenge } = await res.json();

      await client.call("GetSignCert", { index: Number(chosen.value) });
      const { content } = await client.call("GetSubjectItem", { index: 0 });
      if (content !== chosen.dataset.cn) {
        throw new Error("证书列表已变化，请点击“刷新”后重新选择证书");
      }
      if (withDialog) {
        show("info", "请在证书助手的窗口中输入 USB Key 密码……");
        await client.call("UILogin", null);
      } else {
        show("info", "正在验证证书密码……");
        const pin = pinInput.value;
        pinInput.value = "";
        await client.call("Login", { pin: pin });
      }
      show("info", "正在签名……");
      const { signature } = await client.call("SignText", { signText: challenge });
      const { cert } = await client.call("GetCertB64", null);

      show("info", "正在验证证书……");
      const reply = await fetch("/ish/api/legacy/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ cert: cert, signature: signature, challenge: challenge }),
      });
      const body = await reply.json().catch(() => ({}));
      if (!reply.ok) {
        throw new Error((body.error && body.error.message) || "登录失败，请稍后重试");
      }
      show("ok", "登录成功，正在进入网上业务大厅……");
      window.location.assign(body.redirect || "/ish/home");
    } catch (e) {
      show("error", (e && (e.msg || e.message)) || "登录失败，请稍后重试", e && e.ret);
    } finally {
      pinInput.value = "";
      setBusy(false);
    }
  }

  $("#legacy-form").addEventListener("submit", (event) => {
    event.preventDefault();
    logIn(false);
  });
  $("#legacy-uilogin").addEventListener("click", () => logIn(true));
  $("#cert-refresh").addEventListener("click", loadCertificates);
  select.addEventListener("change", showExpiry);
  loadCertificates();
})();
