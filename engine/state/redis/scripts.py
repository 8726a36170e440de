"""Lua run by the Redis state store: one partition's write, atomically. EVALSHA, else EVAL.

Every key of one call belongs to one Kafka partition and carries its hash tag
(:mod:`engine.state.redis.keys`), so a call touches one Redis Cluster slot.
"""

from __future__ import annotations

import hashlib

#: One partition's states and mark, atomically.
#:
#: KEYS     the mark key, the follow-up index key, then one state key per row
#: ARGV[1]  the new mark ("" writes no mark and checks none: embedded tools and tests)
#: ARGV[2]  "force": skip the mark check (the first chunk of a rebuild, which has no mark
#:          yet), else ""
#: ARGV[3]  one msgpack array (str types: Redis's cmsgpack reads those as strings) with a
#:          row per state key: ``[value ("" deletes), TTL seconds, customer (the index
#:          member), next due time as a score string or ""]``
#:
#: Returns the rows written, -1 when the mark is missing (the partition's data was lost:
#: the caller rebuilds it from the changelog) or -2 when the stored mark is ahead of ARGV[1]
#: (a newer writer got there first). Nothing is written then. A resend of the very same
#: write (the client lost the reply) finds the same mark and writes the same values again.
WRITE = """
local mark = ARGV[1]
if mark ~= '' and ARGV[2] ~= 'force' then
  local stored = redis.call('GET', KEYS[1])
  if not stored then return -1 end
  if tonumber(stored) > tonumber(mark) then return -2 end
end
local rows = cmsgpack.unpack(ARGV[3])
for i = 1, #rows do
  local key, row = KEYS[2 + i], rows[i]
  if row[1] == '' then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[2], row[3])
  else
    redis.call('SET', key, row[1], 'EX', row[2])
    if row[4] == '' then
      redis.call('ZREM', KEYS[2], row[3])
    else
      redis.call('ZADD', KEYS[2], row[4], row[3])
    end
  end
end
if mark ~= '' then redis.call('SET', KEYS[1], mark) end
return #rows
"""

WRITE_SHA = hashlib.sha1(WRITE.encode("utf-8")).hexdigest()

LOST = -1
AHEAD = -2
