"""``certhelper run``: the desktop daemon (docs/desktop.md) — the bridge's event
loop in a thread, the tray on the main thread, one daemon per user."""
