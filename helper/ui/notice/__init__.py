"""Notice windows: expiry alerts, the initial-PIN prompt, 技术支持, 关于, 检测修复.

Run as ``python -m helper.ui.notice``; the same pipe protocol as the dialogs
(:mod:`helper.ui.dialogs`), one UTF-8 JSON line each way.

request (stdin)::

    {"kind": "expiry", "alerts": [Alert.to_dict(), ...], "renewal_url": "https://..."}
    {"kind": "initial_pin", "token_label": "...", "token_serial": "..."}
    {"kind": "support"}
    {"kind": "about", "version": "0.1.0"}
    {"kind": "doctor", "findings": [{"level": "ok" | "warning" | "error",
                                     "code": "...", "message": "...", "fix": "...",
                                     "detail": "...", "fix_id": "...", "check": "...",
                                     "needs_root": false}, ...]}

    any kind may add "timeout": seconds (none by default: a notice waits)

result (stdout)::

    {"result": "renew"}       expiry: 证书延期
    {"result": "changepin"}   initial_pin: 立即修改
    {"result": "rerun"}       doctor: 重新检测
    {"result": "close", "fixed": [fix ids], "problems": [codes]}   doctor (修复 applied)
    {"result": "close"}       知道了 / 稍后 / 关闭, Escape, closing the window; also
                              {"result": "close", "detail": "timeout" | "parent_gone"}
    {"result": "error", "detail": "..."}

The windows are :class:`helper.ui.dialogs.Dialog` underneath: WM class
``certhelper``, a title starting with 证书助手, the 证 header, on top, centred,
the first (default) button focused; Enter presses the focused button, Tab moves
to the next one, Escape closes. The parent keeps stdin open while the window is
up; its end closes the window.

The daemon's side is :func:`show_notice`, which returns the result string and
``"close"`` whenever the child fails.

Layout: ``content`` and ``wrap`` (Tk-free), ``base`` and one module per kind
(``expiry``, ``initial_pin``, ``support``, ``doctor``), ``protocol`` (the child's
main), ``client`` (the daemon's side).
"""
