-- Push an entry onto capped lists, newest first, in one step: a customer's timeline (common/customers/history.py),
-- a customer's plan-selection decisions and the fleet's (api/guard_store.py, common/guard/selection_log.py).
-- KEYS: the lists. ARGV: three per list, in KEYS' order: the entry, the cap, the ttl s ('0': the list never expires).
for i, key in ipairs(KEYS) do
  local at = (i - 1) * 3
  redis.call('LPUSH', key, ARGV[at + 1])
  redis.call('LTRIM', key, 0, tonumber(ARGV[at + 2]) - 1)
  if tonumber(ARGV[at + 3]) > 0 then redis.call('EXPIRE', key, ARGV[at + 3]) end
end
return #KEYS
