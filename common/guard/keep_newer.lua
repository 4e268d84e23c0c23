-- Keep the newer of two JSON entries of a hash field (common/guard/usage.py, common/guard/usage_reports.py).
-- KEYS: the hash [, a key that must exist: the customer's link].
-- ARGV: field, entry JSON (it holds an `at`), its time [, ttl s for the hash].
-- Returns 1 kept, 0 a newer one is kept, -1 the required key is missing (nothing kept).
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local old, kept = redis.call('HGET', KEYS[1], ARGV[1]), 0
if not (old and tonumber(cjson.decode(old)['at']) > tonumber(ARGV[3])) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  kept = 1
end
if ARGV[4] then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return kept
