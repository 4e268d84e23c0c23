"""The on-call console: server-rendered pages at `/console/` of `rolesync api` (docs/on-call.md)."""
