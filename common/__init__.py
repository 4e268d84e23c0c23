"""What the ingest, the worker and the CLI share: settings, errors, Redis key shapes, messages."""
