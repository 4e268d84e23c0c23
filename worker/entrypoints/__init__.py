"""What processes the worker runs, and what each builds (the composition root)."""
