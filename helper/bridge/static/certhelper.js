/*!
 * certhelper.js — 证书助手 (certhelper) client for web pages. Protocol v1.
 * Wire contract: docs/bridge-protocol.md. Plain ES2017, no dependencies, no build step.
 *
 *   <script src="https://127.0.0.1:17213/v1/certhelper.js"></script>
 *
 *   await CertHelper.ping();                         // {app, version, protocol}
 *   const token = await CertHelper.authenticate(challengeFromYourServer);
 *   // POST token to your server, which checks it with helper.verify.verify_auth_token
 *   const sig = await CertHelper.signText("汇缴 12,345.00 元", {format: "cms"});  // shown, then signed
 *   const raw = await CertHelper.signData(base64Bytes, {format: "raw"});  // size + SHA-256 shown
 *   await CertHelper.logout();
 *   const off = CertHelper.on("token.removed", (data) => { ... });  // off() unsubscribes
 *   CertHelper.configure({port: 17213, host: "127.0.0.1", legacyPort: 17212});  // optional
 *   const why = await CertHelper.diagnose();  // {ok} or {code, message}: not running,
 *                                             // TLS not trusted, LNA-blocked, port taken
 *   await CertHelper.whenReachable({onStatus: (d) => show(d.message)});  // waits, backs off
 *
 * ping() resolves {app, version, protocol, allowed}; allowed is false when the helper runs
 * but this site is not among its configured halls (opening the connection then asks the user).
 * When the helper is out of reach, ping() rejects with the reason diagnose() found.
 * Halls should serve a copy of this file from their own origin: a script loaded from the
 * helper cannot load when the helper is down or untrusted, and then cannot say why.
 * Every method returns a Promise. Failures reject with an Error whose `.code` is the
 * protocol's error code (docs/errors.md) and whose `.message` is Chinese text for the
 * user; `.detail` carries the helper's own message when there is one.
 *
 * The helper asks for the PIN in its own window: this script never takes a PIN, and a
 * call whose options carry a PIN-like field is refused before anything is sent.
 * With the certhelper browser extension installed (docs/extension.md), calls go through
 * it instead of wss://127.0.0.1 — same methods, errors and events, and no Local Network
 * Access, TLS trust or port to get in the way; without it, or when its native host is
 * not registered but the helper is reachable directly, the WebSocket is used.
 * Before the WebSocket opens, ping() fetches /v1/ping with
 * {targetAddressSpace: "loopback"} so that Chrome can show its Local Network Access
 * prompt. When loaded from the helper itself, the script talks to the address it came from.
 */
(function (global) {
  "use strict";

  const DEFAULT_HOST = "127.0.0.1";
  const DEFAULT_PORT = 17213;
  const DEFAULT_LEGACY_PORT = 17212; // plain http: the HEBCA endpoint and /v1/alive
  const DIALOG_TIMEOUT = 130000; // methods that may show a dialog (the helper waits 120 s)
  const SHORT_TIMEOUT = 35000; // methods without a dialog (token operations: 30 s)
  const PING_TIMEOUT = 10000;
  const PIN_KEYS = ["pin", "password", "userpin", "passwd", "pincode", "user_pin"];

  const MESSAGES = {
    // this script
    helper_unreachable: "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)",
    helper_untrusted:
      "证书助手正在运行，但浏览器不信任它的本机证书。请在证书助手托盘菜单中打开「检测修复」，" +
      "点击「修复」，本页会自动重新连接 (the browser does not trust the helper's local " +
      "certificate: open 检测修复 and click 修复; this page reconnects by itself)",
    lna_blocked:
      "浏览器阻止了本网页连接证书助手（本网页不是 https 网址）。请在证书助手托盘菜单中打开" +
      "「检测修复」，点击「修复」，然后重新打开浏览器 (the browser blocks this http page from " +
      "reaching the helper: open 检测修复, click 修复, then restart the browser)",
    port_taken:
      "证书助手的端口被其他程序占用（可能是原河北CA数字证书助手）。请退出该程序后稍候，" +
      "或在「检测修复」中查看 (another program, perhaps the original HEBCA helper, holds " +
      "the helper's port: quit it, or see 检测修复)",
    extension_host_missing:
      "已安装证书助手浏览器扩展，但本机尚未登记证书助手。请在证书助手托盘菜单中打开「检测修复」，" +
      "点击「修复」，或运行 certhelper install (the browser extension is installed but the " +
      "helper is not registered with the browser: open 检测修复 and click 修复)",
    helper_refused: "证书助手拒绝了本网站的连接，请在证书助手中允许本网站后重试",
    helper_outdated: "证书助手版本不兼容，请升级证书助手",
    connection_closed: "与证书助手的连接已断开，请重试",
    request_timeout: "证书助手长时间没有响应，请重试",
    bad_response: "证书助手返回了无法识别的数据",
    not_supported: "当前浏览器不支持证书助手，请使用新版 Chrome、Edge 或 Firefox",
    // bridge (docs/bridge-protocol.md)
    bad_request: "请求格式错误",
    unknown_method: "不支持的请求方法",
    bad_params: "请求参数无效",
    pin_not_accepted: "网页不能传递密码，请在证书助手的窗口中输入密码",
    origin_denied: "该网站无权使用证书助手",
    host_denied: "请求地址无效",
    consent_denied: "用户拒绝了该网站的请求",
    user_cancelled: "用户取消了操作",
    user_timeout: "等待用户操作超时",
    dialog_failed: "证书助手无法显示对话框",
    rate_limited: "请求过于频繁，请稍后再试",
    pin_attempts_exceeded: "密码错误次数过多，请稍后再试，以免锁定 USB Key",
    no_certificate: "没有可用的证书，请插入 USB Key",
    // docs/errors.md
    internal_error: "证书助手内部错误",
    module_load_failed: "无法加载 USB Key 驱动，请重新安装驱动",
    token_absent: "未检测到 USB Key，或 Key 已被拔出",
    token_not_found: "找不到指定的 USB Key",
    token_ambiguous: "插入了多个 USB Key，请只保留一个",
    token_busy: "USB Key 正忙，请稍后再试",
    device_error: "USB Key 操作失败",
    pin_incorrect: "密码错误",
    pin_locked: "密码已锁定，请携带 USB Key 到 CA 办事处解锁",
    pin_len_range: "密码长度不符合要求",
    pin_invalid: "密码包含不允许的字符",
    pin_expired: "密码已过期，请先修改密码",
    not_logged_in: "尚未登录 USB Key，请先输入密码",
    key_not_found: "USB Key 中没有与证书对应的私钥",
    mechanism_unsupported: "USB Key 不支持该签名算法",
    operation_timeout: "USB Key 操作超时",
    bad_input: "输入数据无效",
    cert_unreadable: "证书数据无法解析",
    cert_not_found: "找不到指定的证书",
    cert_ambiguous: "有多个证书符合条件，请指定得更具体些",
    signing_unsupported: "暂不支持使用该证书签名（如 SM2 国密证书）",
    pin_policy: "新密码不符合要求",
    pin_mismatch: "两次输入的新密码不一致",
    config_invalid: "证书助手的配置文件有误",
    cancelled: "操作已取消",
  };

  function fail(code, detail) {
    const err = new Error(MESSAGES[code] || detail || "证书助手出错 (" + code + ")");
    err.name = "CertHelperError";
    err.code = code;
    if (detail) err.detail = detail;
    return err;
  }

  function carriesPin(value, depth) {
    if (depth > 20 || value === null || typeof value !== "object") return depth > 20;
    return Object.keys(value).some(
      (k) => PIN_KEYS.indexOf(k.toLowerCase()) >= 0 || carriesPin(value[k], depth + 1)
    );
  }

  function withTimeout(promise, ms, code) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(fail(code)), ms);
      promise.then(
        (value) => { clearTimeout(timer); resolve(value); },
        (err) => { clearTimeout(timer); reject(err); }
      );
    });
  }

  // The helper's address: configure() > where this script was loaded from > default.
  const state = {
    host: DEFAULT_HOST,
    port: DEFAULT_PORT,
    legacyPort: DEFAULT_LEGACY_PORT,
    ws: null,
    opening: null,
    transport: null, // of the open connection: "extension" | "websocket"
  };
  (function fromScriptSrc() {
    const el = global.document && global.document.currentScript;
    const m = el && /^https:\/\/([^/]+):(\d+)\/v1\/certhelper\.js(\?|#|$)/.exec(el.src || "");
    if (m) {
      state.host = m[1];
      state.port = Number(m[2]);
    }
  })();
  let nextId = 1;
  const pending = new Map(); // id -> {resolve, reject, timer}
  const handlers = {}; // event name -> [handler]

  function base(port) {
    return "https://" + state.host + ":" + (port || state.port);
  }

  function emit(name, data) {
    (handlers[name] || []).slice().forEach((h) => {
      try {
        h(data);
      } catch (e) {
        setTimeout(() => { throw e; }); // a page's handler error must not break us
      }
    });
  }

  function configure(options) {
    const o = options || {};
    if (o.port !== undefined) {
      if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) {
        throw fail("bad_params", "port must be 1..65535");
      }
      state.port = o.port;
    }
    if (o.host !== undefined) {
      if (["127.0.0.1", "localhost", "[::1]"].indexOf(o.host) < 0) {
        throw fail("bad_params", "host must be 127.0.0.1, localhost or [::1]");
      }
      state.host = o.host;
    }
    if (o.legacyPort !== undefined) {
      if (!Number.isInteger(o.legacyPort) || o.legacyPort < 1 || o.legacyPort > 65535) {
        throw fail("bad_params", "legacyPort must be 1..65535");
      }
      state.legacyPort = o.legacyPort;
    }
    close();
  }

  // fetch with the Local Network Access hint; without it where the option is refused.
  async function fetchLoopback(url, init) {
    try {
      return await fetch(url, Object.assign({ targetAddressSpace: "loopback" }, init));
    } catch (e) {
      return fetch(url, init);
    }
  }

  const NO_STORE = { cache: "no-store", credentials: "omit" };

  // The https ping: {kind: "ok", body} | {kind: "closed"} (reachable, CORS refused:
  // the helper runs, this site is not yet allowed) | {kind: "other"} (something that
  // is not certhelper answers) | {kind: "down"} (no TLS connection at all).
  async function httpsPing(port) {
    const url = base(port) + "/v1/ping";
    let res;
    try {
      res = await fetchLoopback(url, NO_STORE);
    } catch (e) {
      try {
        await fetchLoopback(url, Object.assign({ mode: "no-cors" }, NO_STORE));
        return { kind: "closed" };
      } catch (e2) {
        return { kind: "down" };
      }
    }
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || body.app !== "certhelper") return { kind: "other" };
    return { kind: "ok", body: body };
  }

  // The plain-http /v1/alive on the legacy port: "certhelper" | "other" | "none".
  async function alive() {
    const url = "http://" + state.host + ":" + state.legacyPort + "/v1/alive";
    try {
      const res = await fetchLoopback(url, NO_STORE);
      const body = await res.json().catch(() => null);
      return body && body.app === "certhelper" && body.alive === true ? "certhelper" : "other";
    } catch (e) {
      try {
        await fetchLoopback(url, Object.assign({ mode: "no-cors" }, NO_STORE));
        return "other"; // something listens there, without our CORS answer
      } catch (e2) {
        return "none";
      }
    }
  }

  function isLoopbackHost(host) {
    return host === "localhost" || host === "[::1]" || host === "::1" || /^127\./.test(host);
  }

  function chromiumMajor() {
    const data = global.navigator && global.navigator.userAgentData;
    const brand = data && (data.brands || []).find((b) => /Chrom/.test(b.brand));
    if (brand) return Number(brand.version) || 0;
    const m = /Chrom(?:e|ium)\/(\d+)/.exec((global.navigator && global.navigator.userAgent) || "");
    return m ? Number(m[1]) : 0;
  }

  // Local Network Access: Chrome >= 142 blocks a plain-http public page from loopback
  // without a word (docs/lna.md); a secure page may have been refused the permission.
  async function blockedByBrowser() {
    const loc = global.location || {};
    if (!global.isSecureContext && loc.hostname && !isLoopbackHost(loc.hostname)) {
      return chromiumMajor() >= 142;
    }
    try {
      const status = await global.navigator.permissions.query({ name: "local-network-access" });
      return status.state === "denied";
    } catch (e) {
      return false;
    }
  }

  function failed(code, detail) {
    return { ok: false, code: code, message: MESSAGES[code], detail: detail };
  }

  // The extension (docs/extension.md): its MAIN-world script defines
  // certhelperExtension on the configured halls' pages, and only there.
  function extension() {
    const x = global.certhelperExtension;
    return x && x.version === 1 && typeof x.connect === "function" ? x : null;
  }

  // An extension socket that closed before it opened carries the refusal's code as
  // its close reason.
  function extensionFailure(event) {
    const reason = (event && event.reason) || "";
    if (reason === "host_missing") return "extension_host_missing";
    if (reason === "origin_denied") return "helper_refused";
    if (reason === "consent_denied") return "consent_denied";
    return "helper_unreachable"; // daemon_unavailable, host_failed, …
  }

  // Resolves with the socket once it is open; rejects with the cause otherwise.
  function openSocket(ws, whyClosed) {
    return withTimeout(
      new Promise((resolve, reject) => {
        ws.onopen = () => resolve(ws);
        ws.onerror = null; // an error is always followed by close
        ws.onclose = (event) => reject(fail(whyClosed(event)));
      }),
      DIALOG_TIMEOUT, // an https site the helper does not know gets a consent dialog
      "request_timeout"
    ).catch((e) => {
      ws.close();
      throw e;
    });
  }

  /** Why the helper is (not) reachable from this page: {ok: true, info} or {ok: false,
   *  code, message} with code helper_unreachable (not running), helper_untrusted (TLS
   *  not trusted by this browser), lna_blocked, port_taken, helper_outdated or
   *  extension_host_missing. info.transport is "extension" or "websocket".
   *  {legacy: true}: for pages that speak the HEBCA protocol on the legacy port only. */
  async function diagnose(options) {
    const o = options || {};
    const ext = o.direct ? null : extension();
    if (ext) {
      try {
        if (o.legacy) {
          (await openSocket(ext.connect("hebca"), extensionFailure)).close();
        } else {
          await connect();
          if (state.transport !== "extension") return diagnose({ direct: true, port: o.port });
        }
        return {
          ok: true,
          info: { app: "certhelper", protocol: 1, allowed: true, transport: "extension" },
        };
      } catch (e) {
        if (e.code !== "extension_host_missing") return failed(e.code || "helper_unreachable");
        const direct = await diagnose(Object.assign({}, o, { direct: true }));
        return direct.ok ? direct : failed("extension_host_missing");
      }
    }
    if (!o.legacy) {
      const got = await httpsPing(o.port);
      if (got.kind === "ok") {
        if (got.body.protocol !== 1) return failed("helper_outdated", "protocol " + got.body.protocol);
        return { ok: true, info: Object.assign({ allowed: true, transport: "websocket" }, got.body) };
      }
      if (got.kind === "closed") {
        const info = { app: "certhelper", protocol: null, allowed: false, transport: "websocket" };
        return { ok: true, info: info };
      }
      if (got.kind === "other") return failed("port_taken", "port " + (o.port || state.port));
    }
    const seen = await alive();
    if (seen === "certhelper") {
      return o.legacy
        ? { ok: true, info: { app: "certhelper", transport: "websocket" } }
        : failed("helper_untrusted");
    }
    if (seen === "other") return failed("port_taken", "port " + state.legacyPort);
    if (await blockedByBrowser()) return failed("lna_blocked");
    return failed("helper_unreachable");
  }

  async function ping(options) {
    const o = options || {};
    const probe = diagnose({ port: o.port, direct: o.direct }).then((d) => {
      if (!d.ok) throw fail(d.code, d.detail);
      return d.info;
    });
    return withTimeout(probe, o.timeout || PING_TIMEOUT, "helper_unreachable");
  }

  /** Poll diagnose() with backoff (1 s doubling to 10 s) until the helper is reachable
   *  or `timeout` ms (default 5 minutes) pass; `onStatus(d)` hears every change of
   *  diagnosis. Resolves with the ping info; rejects with the last failure. */
  function whenReachable(options) {
    const o = options || {};
    const deadline = Date.now() + (o.timeout || 300000);
    let last = null;
    let delay = 1000;
    return new Promise((resolve, reject) => {
      const round = async () => {
        let d;
        try {
          d = await withTimeout(diagnose(o), PING_TIMEOUT, "helper_unreachable");
        } catch (e) {
          d = { ok: false, code: e.code || "helper_unreachable", message: e.message };
        }
        if (!last || last.ok !== d.ok || last.code !== d.code) {
          last = d;
          if (o.onStatus) {
            try {
              o.onStatus(d);
            } catch (e) {
              setTimeout(() => { throw e; });
            }
          }
        }
        if (d.ok) return resolve(d.info);
        if (Date.now() + delay > deadline) return reject(fail(d.code, d.detail));
        setTimeout(round, delay);
        delay = Math.min(delay * 2, 10000);
      };
      round();
    });
  }

  function onMessage(event) {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (typeof msg.event === "string") {
      emit(msg.event, msg.data);
      return;
    }
    const entry = pending.get(msg.id);
    if (!entry) {
      if (msg.error) emit("error", fail(msg.error.code, msg.error.message_zh));
      return;
    }
    pending.delete(msg.id);
    clearTimeout(entry.timer);
    if (msg.error) {
      entry.reject(fail(String(msg.error.code), msg.error.message_zh || msg.error.message));
    } else {
      entry.resolve(msg.result);
    }
  }

  function onClose(ws) {
    if (state.ws !== ws) return;
    state.ws = null;
    pending.forEach((entry) => {
      clearTimeout(entry.timer);
      entry.reject(fail("connection_closed"));
    });
    pending.clear();
    emit("close", {});
  }

  // The open connection, opening one when there is none: through the extension when
  // it is there (falling back to the WebSocket only if its native host is missing and
  // the helper answers directly), else the WebSocket after a ping.
  function connect() {
    if (state.ws && state.ws.readyState === 1) return Promise.resolve(state.ws);
    if (state.opening) return state.opening;
    const opening = (async () => {
      const ext = extension();
      let ws = null;
      if (ext) {
        try {
          ws = await openSocket(ext.connect("native"), extensionFailure);
        } catch (e) {
          if (e.code !== "extension_host_missing") throw e;
          if (!(await diagnose({ direct: true })).ok) throw e; // the missing host is the cause
        }
      }
      const transport = ws ? "extension" : "websocket";
      if (!ws) {
        if (typeof global.WebSocket !== "function") throw fail("not_supported");
        const info = await ping({ direct: true });
        const url = "wss://" + state.host + ":" + state.port + "/v1/ws";
        const why = () => (info.allowed ? "helper_unreachable" : "helper_refused");
        ws = await openSocket(new global.WebSocket(url), why);
      }
      ws.onmessage = onMessage;
      ws.onclose = () => onClose(ws);
      state.ws = ws;
      state.transport = transport;
      emit("open", { transport: transport });
      return ws;
    })();
    const done = () => {
      state.opening = null;
    };
    opening.then(done, done);
    state.opening = opening;
    return opening;
  }

  async function call(method, params, timeout) {
    if (carriesPin(params, 0)) throw fail("pin_not_accepted");
    const ws = await connect();
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(fail("request_timeout"));
      }, timeout);
      pending.set(id, { resolve, reject, timer });
      try {
        ws.send(JSON.stringify({ id: id, method: method, params: params }));
      } catch (e) {
        pending.delete(id);
        clearTimeout(timer);
        reject(fail("connection_closed"));
      }
    });
  }

  // Options are copied field by field: nothing else (a PIN above all) reaches the helper.
  function pick(options, names) {
    const o = options || {};
    if (carriesPin(o, 0)) throw fail("pin_not_accepted");
    const out = {};
    names.forEach((n) => {
      if (o[n] !== undefined && o[n] !== null) out[n] = o[n];
    });
    return out;
  }

  const CertHelper = {
    version: "1",
    messages: MESSAGES,
    configure: configure,
    ping: ping,
    diagnose: diagnose,
    whenReachable: whenReachable,
    /** Usable login certificates: [{der, id, subject: {cn, dn}, serial_hex, not_after, …}]. */
    listCertificates: async () =>
      (await call("certificates.list", {}, SHORT_TIMEOUT)).certificates,
    /** The login token for `challenge` (base64url from the hall's server); send it back. */
    authenticate: async (challenge, options) => {
      const params = Object.assign({ challenge: challenge }, pick(options, ["certificate"]));
      return call("auth.authenticate", params, DIALOG_TIMEOUT);
    },
    /** Sign base64 `data`; the helper shows its size and SHA-256. A `text` option must be
     *  exactly `data` as UTF-8 (else bad_params): signText does that for you. */
    signData: async (data, options) => {
      const params = Object.assign({ data: data }, pick(options, ["format", "text", "certificate"]));
      return call("sign.data", params, DIALOG_TIMEOUT);
    },
    /** Sign a text's UTF-8 bytes; the helper shows the text itself. {format, signature, …} */
    signText: async (text, options) => {
      const bytes = new TextEncoder().encode(String(text));
      let binary = "";
      for (const b of bytes) binary += String.fromCharCode(b);
      const params = Object.assign(
        { data: btoa(binary), text: String(text) },
        pick(options, ["format", "certificate"])
      );
      return call("sign.data", params, DIALOG_TIMEOUT);
    },
    /** Certificate renewal, for the CA's own pages only (configured CA origins). */
    renewal: {
      /** [{sha256, subject_cn, not_after, days_left, in_window, der, …}] and the window. */
      status: async () => call("renewal.status", {}, SHORT_TIMEOUT),
      /** A PKCS#10 request (base64 DER) for `certificate` (sha256 hex); {newKey: true}
       *  has the key make a new key pair first. */
      request: async (certificate, options) =>
        call(
          "renewal.request",
          { certificate: certificate, new_key: !!(options && options.newKey) },
          2 * DIALOG_TIMEOUT + SHORT_TIMEOUT // confirmation, PIN, then key generation
        ),
      /** Write the renewed certificate (base64 DER) onto the key; `chain`: base64 DER CAs. */
      install: async (certificate, chain) =>
        call("renewal.install", { certificate: certificate, chain: chain || [] }, DIALOG_TIMEOUT),
    },
    /** End this site's login session on the key. */
    logout: async () => call("auth.logout", {}, SHORT_TIMEOUT),
    /** Listen to token.inserted, token.removed, certificate.expiring, open, close, error. */
    on: (name, handler) => {
      (handlers[name] = handlers[name] || []).push(handler);
      return () => {
        handlers[name] = (handlers[name] || []).filter((h) => h !== handler);
      };
    },
    close: close,
  };

  function close() {
    const ws = state.ws;
    if (ws) {
      onClose(ws);
      ws.close(1000);
    }
  }

  global.CertHelper = CertHelper;
})(typeof window !== "undefined" ? window : this);
