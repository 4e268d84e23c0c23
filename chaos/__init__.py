"""Proof under fire: chaos, fuzz and secrets suites over the real pipe (`python -m chaos <suite>`)."""
