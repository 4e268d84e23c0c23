"""What a customer is entitled to and what a target holds: grants, snapshots, hand grants."""
