"""OS integration (autostart, TLS trust, URL schemes); grows in the installer issue."""
