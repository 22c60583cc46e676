"""The browser-extension transport (issue 15): native messaging to the gate."""
