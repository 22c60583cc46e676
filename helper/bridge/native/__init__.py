"""The native API v1 (docs/bridge-protocol.md): HTTPS/WSS on 127.0.0.1, JSON requests
with ids, an origin-bound login token in the style of Web eID."""
