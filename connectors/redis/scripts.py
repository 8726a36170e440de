"""Lua run by the Redis state store. Sent with EVALSHA; EVAL when the server lacks it."""

from __future__ import annotations

import hashlib

#: Stored value of a customer: the version as 16 lowercase hex digits, then the msgpack blob.
VERSION_DIGITS = 16

#: Arguments per customer in :data:`SAVE_BATCH`.
PER_STATE = 6

#: One batch's write, atomically: other keys first (the worker's outbox), then every
#: customer whose stored version is still the one the caller loaded.
#:
#: KEYS     ``nraw`` other keys, then ``n`` state keys, then ``nidx`` follow-up index keys
#: ARGV[1..3]  ``nraw``, ``n``, ``nidx``
#: then     ``nraw`` values for the other keys ("" deletes the key)
#: then     6 per customer, in the order of its state key:
#:            the version the caller loaded (0 for a customer with no stored state),
#:            the new value (header and blob already carrying that version + 1),
#:            TTL in seconds, the customer id (the index member),
#:            the next due time as a score or "" when nothing is pending,
#:            which index key (1-based among the ``nidx``)
#:
#: Returns one integer per customer: the new version when written, ``-1 - stored`` when the
#: stored version differs (a conflict: that customer is not written, the others are).
#: Every version is checked before anything is written, so an unreadable header (an error
#: reply) or a wrong key type (a script error) leaves every key untouched.
#: A replay of the very same write (the client resent it after losing the reply) finds
#: ``stored == expected + 1`` and the same value: it is not a conflict.
#: Only the header is read (GETRANGE) unless the versions differ.
SAVE_BATCH = """
local nraw, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local first = 3 + nraw
local out = {}
for i = 1, n do
  local key = KEYS[nraw + i]
  local a = first + (i - 1) * 6
  local expected = tonumber(ARGV[a + 1])
  local head = redis.call('GETRANGE', key, 0, 15)
  local stored = 0
  if head ~= '' then
    stored = tonumber(head, 16)
    if stored == nil or #head ~= 16 then
      return redis.error_reply('ERR unreadable tact state header in ' .. key)
    end
  end
  if stored == expected or (stored == expected + 1 and redis.call('GET', key) == ARGV[a + 2]) then
    out[i] = expected + 1
  else
    out[i] = -1 - stored
  end
end
for i = 1, nraw do
  local v = ARGV[3 + i]
  if v == '' then
    redis.call('DEL', KEYS[i])
  else
    redis.call('SET', KEYS[i], v)
  end
end
for i = 1, n do
  if out[i] >= 0 then
    local a = first + (i - 1) * 6
    redis.call('SET', KEYS[nraw + i], ARGV[a + 2], 'EX', ARGV[a + 3])
    local index = KEYS[nraw + n + tonumber(ARGV[a + 6])]
    if ARGV[a + 5] == '' then
      redis.call('ZREM', index, ARGV[a + 4])
    else
      redis.call('ZADD', index, ARGV[a + 5], ARGV[a + 4])
    end
  end
end
return out
"""

SAVE_BATCH_SHA = hashlib.sha1(SAVE_BATCH.encode("utf-8")).hexdigest()
