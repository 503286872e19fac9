"""The local HTTP + WebSocket API of a running user node."""
