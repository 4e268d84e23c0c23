"""Fleet-wide passes on a schedule: reconcile, mapping change, scope probe, hand grants, heal."""
