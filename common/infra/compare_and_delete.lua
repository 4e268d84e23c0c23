-- Delete a key only while it still holds this holder's token: releases a lease (worker/convergence/lease.py)
-- or the sweep lock (common/plans/fleet_mapping.py) without ever deleting another holder's.
-- KEYS: the key. ARGV: the holder's token. Returns 1 if deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
