"""The worker: rooms named for the question each answers (docs/architecture.md, Rooms; map: devtools/rooms.py)."""
