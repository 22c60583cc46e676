/* A small client for the HEBCA "P11" WebSocket protocol (ws://localhost:17212/test), written
 * for the demo hall's legacy login page from the protocol description
 * (shared/docs/hebca-p11-protocol.md) — not the HebcaP11Object library.
 *
 *   const client = new HebcaLegacyClient({ port: 17212 });
 *   const { count } = await client.call("GetSignCertCount", null);
 *
 * Handshake "0|<ms>" -> "0|...Welcome...". Requests "1|<func>" or "1|<func>|<JSON>", one at
 * a time (a queue: the protocol has no request ids, a reply is matched by its function
 * name). Replies "<tag>|<func>|<JSON>": field 1 must be the function, field 2 is parsed
 * with JSON.parse (never eval). ret 0 resolves with the reply object; anything else
 * rejects with an Error carrying {ret, msg}. Nothing is ever logged (parameters hold PINs).
 * ES2017, no dependencies. */
(function (global) {
  "use strict";

  const DEFAULT_PORT = 17212;
  const ERR_SERVICE = 1004; // the protocol's "cannot open the helper service"
  const ERR_NO_RESPONSE = 1009; // "the helper did not respond"
  const ERR_BAD_REPLY = -1;
  const NOT_RUNNING = "未检测到证书助手，请确认已安装并启动证书助手 (certhelper)";
  const CLOSED = "与证书助手的连接已断开，请重试";

  function failure(ret, msg) {
    const error = new Error(msg);
    error.ret = ret;
    error.msg = msg;
    return error;
  }

  // The helper HTML-escapes msg (the original client writes it with innerHTML); we show
  // text, so undo the escaping of the five characters it escapes.
  function unescapeHtml(text) {
    const map = { "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'", "&#39;": "'" };
    return String(text)
      .replace(/&(lt|gt|quot|#x27|#39);/g, (m) => map[m])
      .replace(/&amp;/g, "&");
  }

  class HebcaLegacyClient {
    /* options: port (default 17212), handshakeTimeout ms (5 s), callTimeout ms (3 min:
     * a call may wait for a PIN or consent dialog that a person answers). */
    constructor(options) {
      const opts = options || {};
      const port = Number(opts.port) || DEFAULT_PORT;
      this.url = "ws://localhost:" + port + "/test";
      this.handshakeTimeout = opts.handshakeTimeout || 5000;
      this.callTimeout = opts.callTimeout || 180000;
      this.socket = null;
      this.ready = null; // Promise of a socket that got its Welcome
      this.pending = null; // { func, resolve, reject, timer }: the request in flight
      this.tail = Promise.resolve(); // the queue: each call starts after the previous one
    }

    /* Opens the socket and does the handshake (again after a close). */
    connect() {
      if (this.ready) return this.ready;
      this.ready = new Promise((resolve, reject) => {
        let ws;
        try {
          ws = new WebSocket(this.url);
        } catch (e) {
          reject(failure(ERR_SERVICE, NOT_RUNNING));
          return;
        }
        this.socket = ws;
        let welcomed = false;
        const timer = setTimeout(() => {
          reject(failure(ERR_NO_RESPONSE, NOT_RUNNING));
          ws.close();
        }, this.handshakeTimeout);
        ws.onopen = () => ws.send("0|" + Date.now());
        ws.onmessage = (event) => {
          if (typeof event.data !== "string") return; // the protocol is text only
          const fields = event.data.split("|");
          if (welcomed) {
            this._reply(fields);
          } else if (fields[0] === "0" && fields.length > 1 && fields[1].includes("Welcome")) {
            welcomed = true;
            clearTimeout(timer);
            resolve();
          } // any other frame before the Welcome is ignored, as the original client does
        };
        ws.onerror = () => {}; // a close event always follows
        ws.onclose = () => {
          clearTimeout(timer);
          if (this.socket === ws) {
            this.socket = null;
            this.ready = null; // the next call reconnects
          }
          reject(failure(ERR_SERVICE, NOT_RUNNING)); // no effect once welcomed
          this._fail(failure(ERR_SERVICE, welcomed ? CLOSED : NOT_RUNNING));
        };
      });
      this.ready.catch(() => {
        this.ready = null;
      });
      return this.ready;
    }

    /* call("GetSignCert", {index: 0}) -> Promise of the reply object ({ret: 0, ...}).
     * param null/undefined sends no parameter field. */
    call(func, param) {
      if (typeof func !== "string" || !/^[A-Za-z0-9]+$/.test(func)) {
        return Promise.reject(failure(ERR_BAD_REPLY, "无效的接口名称"));
      }
      const frame =
        "1|" + func + (param === null || param === undefined ? "" : "|" + JSON.stringify(param));
      const run = () => this.connect().then(() => this._send(func, frame));
      const result = this.tail.then(run, run);
      this.tail = result.catch(() => {});
      return result;
    }

    /* Closes the socket; a later call connects again. */
    close() {
      if (this.socket) this.socket.close();
    }

    _send(func, frame) {
      return new Promise((resolve, reject) => {
        const ws = this.socket;
        if (!ws || ws.readyState !== WebSocket.OPEN) {
          reject(failure(ERR_SERVICE, CLOSED));
          return;
        }
        const timer = setTimeout(() => {
          // a late reply could be taken for the next call of the same function: start over
          this._fail(failure(ERR_NO_RESPONSE, "证书助手没有响应，请重试"));
          ws.close();
        }, this.callTimeout);
        this.pending = { func, resolve, reject, timer };
        ws.send(frame);
      });
    }

    _reply(fields) {
      const p = this.pending;
      if (!p || fields[1] !== p.func) return; // not the reply we wait for: ignored
      this.pending = null;
      clearTimeout(p.timer);
      let body;
      try {
        body = JSON.parse(fields[2]);
      } catch (e) {
        body = null;
      }
      if (body === null || typeof body !== "object") {
        p.reject(failure(ERR_BAD_REPLY, "证书助手的应答格式错误"));
      } else if (body.ret !== 0) {
        const msg = typeof body.msg === "string" && body.msg ? unescapeHtml(body.msg) : "";
        p.reject(failure(body.ret, msg || "证书助手返回错误（" + body.ret + "）"));
      } else {
        p.resolve(body);
      }
    }

    _fail(error) {
      const p = this.pending;
      if (!p) return;
      this.pending = null;
      clearTimeout(p.timer);
      p.reject(error);
    }
  }

  global.HebcaLegacyClient = HebcaLegacyClient;
})(window);
