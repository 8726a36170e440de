"""Lua run by the Redis state store. Sent with EVALSHA; EVAL when the server lacks it."""

from __future__ import annotations

import hashlib

#: Stored value of a customer: the version as 16 lowercase hex digits, then the msgpack blob.
VERSION_DIGITS = 16

#: Save one customer's state if nobody else wrote it since it was loaded.
#:
#: KEYS[1]  the customer's state string (version header + msgpack blob)
#: KEYS[2]  the follow-up index (sorted set: customer -> next due time)
#: ARGV[1]  the version the caller loaded (0 for a customer with no stored state)
#: ARGV[2]  the new value, its header and blob already carrying version ARGV[1] + 1
#: ARGV[3]  TTL in seconds
#: ARGV[4]  the customer id (the index member)
#: ARGV[5]  the next due time as a score, or "" when nothing is pending
#:
#: Returns ``{1, new_version}`` when written, ``{0, stored_version}`` on a conflict.
#: A replay of the very same write (the client resent the pipeline after losing the
#: reply) finds ``stored == expected + 1`` and the same value: it is not a conflict.
#: Only the header is read (GETRANGE) unless the versions differ.
SAVE_STATE = """
local expected = tonumber(ARGV[1])
local head = redis.call('GETRANGE', KEYS[1], 0, 15)
local stored = 0
if head ~= '' then
  stored = tonumber(head, 16)
  if stored == nil or #head ~= 16 then
    return redis.error_reply('ERR unreadable tact state header in ' .. KEYS[1])
  end
end
if stored ~= expected then
  if not (stored == expected + 1 and redis.call('GET', KEYS[1]) == ARGV[2]) then
    return {0, stored}
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
else
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
end
return {1, expected + 1}
"""

SAVE_STATE_SHA = hashlib.sha1(SAVE_STATE.encode("utf-8")).hexdigest()
