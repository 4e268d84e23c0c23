"""On-call and ops: dead letters, customer links, reconcile sweeps, status."""
