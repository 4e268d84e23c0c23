"""What a target holds: the customer pass, targets, lease, entitlements, snapshot, members."""
