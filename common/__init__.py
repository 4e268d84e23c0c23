"""What the ingest, the worker and the CLI share: the contracts at the top (settings, errors, Redis key shapes,
messages) and rooms beside them (docs/architecture.md, Rooms; map: devtools/rooms.py)."""
