"""Lua run by the Redis state store. Sent with EVALSHA; EVAL when the server lacks it."""

from __future__ import annotations

import hashlib

#: Stored value of a customer: the version as 16 lowercase hex digits, then the msgpack blob.
VERSION_DIGITS = 16

#: One batch's write, atomically: other keys first (the worker's outbox), then every
#: customer whose stored version is still the one the caller loaded.
#:
#: KEYS     ``nraw`` other keys, then one state key per customer, then the follow-up index keys
#: ARGV[1]  ``nraw``
#: then     ``nraw`` values for the other keys ("" deletes the key)
#: then     one msgpack array (str types, no bin: Redis's cmsgpack reads those as strings)
#:          with one row per customer, in the order of the state keys:
#:          ``[loaded version (0: none stored), new value (header and blob already carrying
#:          that version + 1), TTL seconds, customer id (the index member), next due time
#:          as a score string or "" when nothing is pending, index key number (1-based)]``
#:
#: One msgpack argument instead of six per customer: redis-py packs every argument of a
#: command in Python, which cost more than the script itself for a batch of 2,000.
#:
#: Returns one integer per customer: the new version when written, ``-1 - stored`` when the
#: stored version differs (a conflict: that customer is not written, the others are).
#: Every version is checked before anything is written, so an unreadable header (an error
#: reply) or a wrong key type (a script error) leaves every key untouched.
#: A replay of the very same write (the client resent it after losing the reply) finds
#: ``stored == expected + 1`` and the same value: it is not a conflict.
#: Only the header is read (GETRANGE) unless the versions differ.
SAVE_BATCH = """
local nraw = tonumber(ARGV[1])
local rows = cmsgpack.unpack(ARGV[2 + nraw])
local n = #rows
local out = {}
for i = 1, n do
  local key, row = KEYS[nraw + i], rows[i]
  local expected = row[1]
  local head = redis.call('GETRANGE', key, 0, 15)
  local stored = 0
  if head ~= '' then
    stored = tonumber(head, 16)
    if stored == nil or #head ~= 16 then
      return redis.error_reply('ERR unreadable tact state header in ' .. key)
    end
  end
  if stored == expected or (stored == expected + 1 and redis.call('GET', key) == row[2]) then
    out[i] = expected + 1
  else
    out[i] = -1 - stored
  end
end
for i = 1, nraw do
  local v = ARGV[1 + i]
  if v == '' then
    redis.call('DEL', KEYS[i])
  else
    redis.call('SET', KEYS[i], v)
  end
end
for i = 1, n do
  if out[i] >= 0 then
    local row = rows[i]
    redis.call('SET', KEYS[nraw + i], row[2], 'EX', row[3])
    local index = KEYS[nraw + n + row[6]]
    if row[5] == '' then
      redis.call('ZREM', index, row[4])
    else
      redis.call('ZADD', index, row[5], row[4])
    end
  end
end
return out
"""

SAVE_BATCH_SHA = hashlib.sha1(SAVE_BATCH.encode("utf-8")).hexdigest()
