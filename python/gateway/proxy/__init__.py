"""Forwarding to origins: `http` streams an HTTP request and its answer through the core's client
(`upstream`). WebSockets will be a second form here."""
