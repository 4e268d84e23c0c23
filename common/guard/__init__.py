"""The plan-selection guard: its decision, its member cache, metered and reported usage, its log."""
