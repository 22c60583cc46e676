/* Demo CA renewal page: lists the inserted certificates through CertHelper.renewal,
 * opens an order, the demo payment, then request -> issue -> install -> receipt.
 * Uses window.CertHelper (certhelper.js, loaded from the helper before this file). */
(function () {
  "use strict";
  const $ = (sel) => document.querySelector(sel);
  const NO_HELPER = "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)";
  const state = { certs: [], order: null, busy: false };

  function show(kind, text, code) {
    const box = $("#status");
    box.className = "status " + kind;
    box.textContent = text;
    box.hidden = false;
    if (code) box.dataset.code = code;
    else delete box.dataset.code;
  }

  function fail(e, fallback) {
    show("error", (e && e.message) || fallback, e && e.code);
  }

  function step(n) {
    document.querySelectorAll("#steps li").forEach((li) => {
      const k = Number(li.dataset.step);
      li.classList.toggle("done", k < n);
      li.classList.toggle("current", k === n);
    });
    $("#step-certs").hidden = n !== 1;
    $("#step-order").hidden = n < 2 || n > 3;
    $("#pay-box").hidden = n !== 2;
    $("#extend-box").hidden = n !== 3;
  }

  // A date in Beijing time (UTC+8), as the receipt shows it, whatever the browser's zone.
  function date(iso) {
    const t = Date.parse(iso);
    if (isNaN(t)) return iso || "";
    const d = new Date(t + 8 * 3600 * 1000);
    const p = (v) => String(v).padStart(2, "0");
    return d.getUTCFullYear() + "年" + p(d.getUTCMonth() + 1) + "月" + p(d.getUTCDate()) + "日";
  }

  async function api(path, body) {
    const init = body === undefined
      ? { cache: "no-store", credentials: "same-origin" }
      : {
          method: "POST",
          cache: "no-store",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        };
    const res = await fetch(path, init);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error((data.error && data.error.message) || "服务器错误，请稍后重试");
      err.code = data.error && data.error.code;
      throw err;
    }
    return data;
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function render() {
    const rows = $("#cert-rows");
    rows.textContent = "";
    if (!state.certs.length) {
      const tr = document.createElement("tr");
      cell(tr, "没有找到证书，请插入 USB Key 后点击“刷新证书列表”", "muted").colSpan = 7;
      rows.appendChild(tr);
      return;
    }
    state.certs.forEach((c) => {
      const tr = document.createElement("tr");
      tr.dataset.sha256 = c.sha256;
      const usage = { sign: "（签名）", enc: "（加密）" }[c.usage] || "";
      cell(tr, c.subject_cn + usage, "subject");
      cell(tr, c.issuer_cn, "issuer");
      cell(tr, c.serial_hex, "mono serial");
      cell(tr, date(c.not_after), "not-after");
      const left = c.days_left < 0 ? "已过期 " + -c.days_left + " 天" : c.days_left + " 天";
      cell(tr, left, "days" + (c.days_left <= 30 ? " warn" : ""));
      cell(tr, c.in_window ? "是" : "否", c.in_window ? "window-yes" : "window-no");
      const action = cell(tr, "", "action");
      if (!c.ours) {
        action.textContent = "非本CA签发";
        action.classList.add("not-ours");
      } else {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "btn primary renew";
        b.dataset.sha256 = c.sha256;
        b.textContent = "老用户延期";
        if (!c.in_window) {
          b.disabled = true;
          b.textContent = "未到延期时间";
          b.title = "可办理延期的时间：" + date(c.window_start) + " 起";
        }
        b.addEventListener("click", () => openOrder(c));
        action.appendChild(b);
      }
      rows.appendChild(tr);
    });
  }

  async function load() {
    if (state.busy) return;
    state.busy = true;
    try {
      if (!window.CertHelper || !window.CertHelper.renewal) throw new Error(NO_HELPER);
      show("info", "正在通过证书助手读取 USB Key 中的证书……");
      const status = await window.CertHelper.renewal.status();
      const certs = status.certificates || [];
      const ours = certs.length
        ? (await api("/api/inspect", { certificates: certs.map((c) => c.der) })).certificates
        : [];
      const mine = new Set(ours.filter((c) => c.ours).map((c) => c.sha256));
      state.certs = certs.map((c) => Object.assign({ ours: mine.has(c.sha256) }, c));
      render();
      const due = state.certs.filter((c) => c.ours && c.in_window).length;
      show(
        due ? "ok" : "info",
        due
          ? "找到 " + certs.length + " 张证书，其中 " + due + " 张可以延期，请选择要延期的证书。"
          : certs.length
            ? "找到 " + certs.length + " 张证书，暂无可在本CA延期的证书。"
            : "没有找到证书，请插入 USB Key。"
      );
      $("#cert-table").dataset.loaded = "true";
    } catch (e) {
      fail(e, NO_HELPER);
    } finally {
      state.busy = false;
    }
  }

  async function openOrder(cert) {
    if (state.busy) return;
    state.busy = true;
    try {
      const order = await api("/api/orders", { certificate: cert.der });
      state.order = Object.assign({ cert: cert }, order);
      $("#order-id").textContent = order.order_id;
      $("#order-subject").textContent = order.subject_cn;
      $("#order-old-serial").textContent = order.old_serial_hex;
      $("#order-old-expiry").textContent = date(order.old_not_after);
      $("#order-new-expiry").textContent = date(order.expected_not_after);
      $("#order-amount").textContent = order.amount;
      step(2);
      show("info", "订单已生成，请支付延期服务费（演示系统为模拟支付）。");
    } catch (e) {
      fail(e, "无法生成订单，请稍后重试");
    } finally {
      state.busy = false;
    }
  }

  async function pay() {
    if (state.busy || !state.order) return;
    state.busy = true;
    $("#pay").disabled = true;
    try {
      await api("/api/orders/" + encodeURIComponent(state.order.order_id) + "/pay", {});
      step(3);
      show("ok", "支付成功（演示，未实际扣款）。请点击“点此延长有效期”。");
    } catch (e) {
      fail(e, "支付失败，请稍后重试");
    } finally {
      state.busy = false;
      $("#pay").disabled = false;
    }
  }

  async function extend() {
    if (state.busy || !state.order) return;
    state.busy = true;
    const button = $("#extend");
    button.disabled = true;
    const order = state.order;
    const path = "/api/orders/" + encodeURIComponent(order.order_id);
    try {
      const newKey = $("#key-new").checked;
      show(
        "info",
        newKey
          ? "请在证书助手窗口中确认，并输入 USB Key 密码；Key 将生成新密钥对，可能需要数十秒……"
          : "请在证书助手窗口中确认，并输入 USB Key 密码……"
      );
      const req = await window.CertHelper.renewal.request(order.cert.sha256, { newKey: newKey });
      show("info", "正在签发新证书……");
      const issued = await api(path + "/csr", { csr: req.csr });
      show("info", "新证书已签发，请在证书助手窗口中确认写入 USB Key……");
      const done = await window.CertHelper.renewal.install(issued.certificate, issued.chain);
      const report = await api(path + "/installed", {
        installed: done.installed,
        old_certificate: done.old_certificate,
      });
      show("ok", "延期成功，新证书已写入 USB Key。");
      window.location.assign(report.receipt);
    } catch (e) {
      fail(e, "延期失败，请稍后重试");
    } finally {
      state.busy = false;
      button.disabled = false;
    }
  }

  $("#refresh").addEventListener("click", load);
  $("#pay").addEventListener("click", pay);
  $("#back").addEventListener("click", () => {
    state.order = null;
    step(1);
    load();
  });
  $("#extend").addEventListener("click", extend);
  load();
})();
