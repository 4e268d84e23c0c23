"""Plumbing every process shares: Redis and its URL, logs, traces, metrics port, URL and TLS rules."""
