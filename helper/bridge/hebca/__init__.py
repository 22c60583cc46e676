"""The HEBCA "P11" WebSocket protocol on ws://localhost:17212/test, so existing
hall pages log in unchanged (docs/hebca-compat.md)."""
