"""The Lua scripts the Redis feature store reads with: the live version and its records in one atomic call."""

from __future__ import annotations

LIVE_VERSION_LUA = """
-- The live version (KEYS[1]) and, when it is not the one the caller holds (ARGV[2]), its meta.
local live = redis.call('GET', KEYS[1])
if not live then return {false} end
local base = ARGV[1] .. ':v:' .. live
local meta = false
if live ~= ARGV[2] then meta = redis.call('GET', base .. ':meta') end
"""

USER_SCRIPT = (
    """
-- KEYS: live pointer, the user's real-time event list, the user's version counter.
-- ARGV: key prefix, version whose meta the caller holds, user id, "1" to read the user's history record too.
-- Returns {live, meta or nil (sent only when live differs from ARGV[2]), user record or nil,
--          version counter or nil, {packed events, oldest first}, history record or nil};
-- {nil} when nothing is published.
"""
    + LIVE_VERSION_LUA
    + """local history = false
if ARGV[4] == '1' then history = redis.call('GET', base .. ':h:' .. ARGV[3]) end
return {live, meta, redis.call('GET', base .. ':u:' .. ARGV[3]), redis.call('GET', KEYS[3]),
        redis.call('LRANGE', KEYS[2], 0, -1), history}
"""
)

VERSIONED_SCRIPT = (
    """
-- KEYS: live pointer. ARGV: key prefix, version the caller holds, key suffix, "1" to skip the value when live
-- equals ARGV[2] (the caller has it already). Returns {live, meta or nil (sent only when live differs),
-- the value of {prefix}:v:{live}:{suffix} or nil}; {nil} when nothing is published.
"""
    + LIVE_VERSION_LUA
    + """local value = false
if live ~= ARGV[2] or ARGV[4] ~= '1' then value = redis.call('GET', base .. ':' .. ARGV[3]) end
return {live, meta, value}
"""
)

ITEMS_SCRIPT = """
-- KEYS: live pointer. ARGV: key prefix, version the caller holds, m, item ids...
-- When live equals ARGV[2] only the first m ids are read, otherwise all of them (the caller's cached
-- records belong to another version). Returns {live, meta or nil (sent only when live differs),
-- {records or nil, one per id read}}; {nil} when nothing is published.
local live = redis.call('GET', KEYS[1])
if not live then return {false} end
local base = ARGV[1] .. ':v:' .. live
local meta = false
local last = #ARGV
if live == ARGV[2] then last = 3 + tonumber(ARGV[3]) else meta = redis.call('GET', base .. ':meta') end
local records = {}
local keys = {}
for i = 4, last do
  keys[#keys + 1] = base .. ':i:' .. ARGV[i]
  if #keys == 500 or i == last then
    for _, record in ipairs(redis.call('MGET', unpack(keys))) do records[#records + 1] = record end
    keys = {}
  end
end
return {live, meta, records}
"""

SCRIPTS = (USER_SCRIPT, ITEMS_SCRIPT, VERSIONED_SCRIPT)
