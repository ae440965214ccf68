"""Forwarding to origins, the proxy stage's two forms: `http` streams an HTTP request and its answer
through the core's client (`upstream`); `websocket` relays a WebSocket session."""
