"""Lua sources for ``redis_store.py``: the same steps as ``gcra.py`` and ``calendar.py``, same formulas.

Every number goes back to Python as text (``%.17g`` round-trips a double exactly; Redis would
truncate a Lua number to an integer). ``ARGV[1]`` is ``now``: empty means "use Redis ``TIME``".
"""

from __future__ import annotations

__all__ = ["ADMIT", "BUDGET_CHARGE", "BUDGET_REFUND", "HIT"]

_PRELUDE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local EPS = 1e-6
local function fmt(x) return string.format('%.17g', x) end
local function clock(arg)
  if arg == '' then
    local t = redis.call('TIME')
    return tonumber(t[1]) + tonumber(t[2]) / 1000000
  end
  return tonumber(arg)
end
-- gcra.py: returns ok, new_tat, remaining, retry_after, reset_after
local function gcra(tat, now, rate, burst, cost)
  local interval = 1.0 / rate
  local capacity = burst * interval
  local base = now
  if tat ~= nil and tat >= now then base = tat end
  local new_tat = base + cost * interval
  local backlog = new_tat - now
  if backlog <= capacity + EPS then
    return true, new_tat, math.max(math.floor((capacity - backlog) / interval + EPS), 0), 0, backlog
  end
  local used = base - now
  local retry = backlog - capacity
  if cost > burst then retry = 1 / 0 end
  return false, base, math.max(math.floor((capacity - used) / interval + EPS), 0), retry, used
end
"""

# The rate+quota step: KEYS[1] TAT (string), KEYS[2] quota (hash w = window start, n = used);
# ARGV[1..8]: now, operations, rate|'', burst, limit|'', period, offset_seconds, grace_ms. Writes both
# only when both allow; leaves ``now``, ``r_ok``... and ``q_ok``... for the script that includes it.
_RATE_AND_QUOTA = """
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mm = m + 9
  if m > 2 then mm = m - 3 end
  local doy = math.floor((153 * mm + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function window(now, period, offset)
  local days = math.floor(math.floor(now + offset) / 86400)
  local first, last
  if period == 'DAY' then
    first = days
    last = days + 1
  elseif period == 'WEEK' then
    first = days - (days + 3) % 7
    last = first + 7
  else
    local z = days + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local month = mp - 9
    if mp < 10 then month = mp + 3 end
    local year = yoe + era * 400
    if month <= 2 then year = year + 1 end
    first = days_from_civil(year, month, 1)
    if month == 12 then last = days_from_civil(year + 1, 1, 1) else last = days_from_civil(year, month + 1, 1) end
  end
  return first * 86400 - offset, last * 86400 - offset
end

local now = clock(ARGV[1])
local cost = tonumber(ARGV[2])
local grace = tonumber(ARGV[8])
local r_ok, r_tat, r_rem, r_retry, r_reset = true, 0, 0, 0, 0
if ARGV[3] ~= '' then
  r_ok, r_tat, r_rem, r_retry, r_reset = gcra(tonumber(redis.call('GET', KEYS[1])), now, tonumber(ARGV[3]),
    tonumber(ARGV[4]), cost)
end
local q_ok, q_used, q_rem, q_retry, q_reset, q_start, q_end = true, 0, 0, 0, 0, 0, 0
if ARGV[5] ~= '' then
  local limit = tonumber(ARGV[5])
  q_start, q_end = window(now, ARGV[6], tonumber(ARGV[7]))
  local stored = redis.call('HMGET', KEYS[2], 'w', 'n')
  local used = 0
  if stored[1] and tonumber(stored[1]) == q_start then used = tonumber(stored[2]) end
  q_reset = q_end - now
  if used + cost <= limit then
    q_used = used + cost
    q_rem = limit - q_used
  else
    q_ok = false
    q_used = used
    q_rem = math.max(limit - used, 0)
    q_retry = q_reset
    if cost > limit then q_retry = 1 / 0 end
  end
end
if r_ok and q_ok then
  if ARGV[3] ~= '' then
    redis.call('SET', KEYS[1], fmt(r_tat), 'PX', string.format('%d', math.ceil((r_tat - now) * 1000) + grace))
  end
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[2], 'w', string.format('%d', q_start), 'n', string.format('%d', q_used))
    redis.call('PEXPIRE', KEYS[2], string.format('%d', math.ceil((q_end - now) * 1000) + grace))
  end
end
local function flag(b) if b then return '1' end return '0' end
local limits = {flag(r_ok), fmt(r_tat), fmt(r_rem), fmt(r_retry), fmt(r_reset),
                flag(q_ok), fmt(q_used), fmt(q_rem), fmt(q_retry), fmt(q_reset)}
"""

HIT = (
    _PRELUDE
    + _RATE_AND_QUOTA
    + """
-- Returns one space-separated string (one bulk reply parses faster than ten).
return table.concat(limits, ' ')
"""
)

ADMIT = (
    _PRELUDE
    + _RATE_AND_QUOTA
    + """
-- HIT, then (only when it allowed) BUDGET_CHARGE on KEYS[3] in the same step, with the same now.
-- ARGV[9..11]: restore_rate, maximum, points. Returns HIT's ten fields, then BUDGET_CHARGE's four
-- ('ok retry_after tat|- now'), or four '-' when the rate or the quota refused (the budget untouched).
if not (r_ok and q_ok) then
  return table.concat(limits, ' ') .. ' - - - -'
end
local b_ok, b_tat, _, b_retry = gcra(tonumber(redis.call('GET', KEYS[3])), now, tonumber(ARGV[9]),
  tonumber(ARGV[10]), tonumber(ARGV[11]))
if b_ok and b_tat > now then
  redis.call('SET', KEYS[3], fmt(b_tat), 'PX', string.format('%d', math.ceil((b_tat - now) * 1000) + grace))
end
local b_state = '-'
if b_tat > now then b_state = fmt(b_tat) end
return table.concat(limits, ' ') .. ' ' .. table.concat({flag(b_ok), fmt(b_retry), b_state, fmt(now)}, ' ')
"""
)

BUDGET_CHARGE = (
    _PRELUDE
    + """
-- KEYS[1]: TAT; ARGV: now, restore_rate, maximum, points, grace_ms -> 'ok retry_after tat|- now'
local now = clock(ARGV[1])
local ok, tat, _, retry = gcra(tonumber(redis.call('GET', KEYS[1])), now, tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]))
if ok and tat > now then
  redis.call('SET', KEYS[1], fmt(tat), 'PX', string.format('%d', math.ceil((tat - now) * 1000) + tonumber(ARGV[5])))
end
local state = '-'
if tat > now then state = fmt(tat) end
local flag = '0'
if ok then flag = '1' end
return table.concat({flag, fmt(retry), state, fmt(now)}, ' ')
"""
)

BUDGET_REFUND = (
    _PRELUDE
    + """
-- KEYS[1]: TAT; ARGV: now, restore_rate, points, grace_ms (gcra.py: gcra_refund)
local now = clock(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat <= now then return 0 end
local new_tat = tat - tonumber(ARGV[3]) / tonumber(ARGV[2])
if new_tat > now then
  local ttl = math.ceil((new_tat - now) * 1000) + tonumber(ARGV[4])
  redis.call('SET', KEYS[1], fmt(new_tat), 'PX', string.format('%d', ttl))
else
  redis.call('DEL', KEYS[1])
end
return 1
"""
)
