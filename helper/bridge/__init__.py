"""The localhost bridge: HTTPS/WebSocket server for web pages (docs/bridge-protocol.md)."""
