package proto

import "github.com/redis/go-redis/v9"

// Every script touches the keys of one table only. Those keys share a hash
// tag, so each script runs on one Redis Cluster slot.
//
// Table meta hash (KEYS[1]):
//   gen        the table's generation, a random token; entries stored under
//              another generation are misses. Absent: a fresh one is made.
//   inc        the hash's incarnation, made with it: a new one tells a
//              client that Redis lost the table's state since it last looked
//   s          the table's write sequence: moves at every row intent and
//              every release of one
//   w:<token>  a table-wide write intent, value = deadline (ms, server time)
// Row hash (KEYS[2..]):
//   v          the row image            g   generation the image belongs to
//   n          the row's version: moves at every intent placed on the row,
//              every release of one, and every dead intent removed
//   i:<token>  a row write intent, value = deadline (ms)
//   c          contended: a second intent arrived while one was live
//
// A read is one pipelined round trip without a script (Peek): the meta's
// gen, inc and s, and each row's v, g and n. A row whose g is the current
// gen is a hit. For a miss the reader keeps what it saw, reads PostgreSQL,
// and fills under the condition that nothing moved since it looked: the same
// gen, no live table or row intent, the same n (or, where the row had no n,
// the same s). Every write places an intent before it commits, which moves
// n and s (a table intent moves gen), and releases it after, which moves
// them again, so a fill whose database read may have missed a write is
// refused. That replaces a lease: nothing is written on a miss before the
// database read, so a miss costs one round trip before it.
//
// An intent whose deadline has passed is dead: its writer crashed or lost
// Redis. A dead table intent may hide a committed write, so whoever finds
// one removes it and moves the generation on; a dead row intent moves n.
//
// Invariants that let Peek decide a hit from v, g and gen alone:
//   - a row hash that holds v holds no intent: placing an intent deletes v
//     and g; fills and releases store v only where no intent is live;
//   - an image whose g is the table's current gen was stored while no table
//     intent was live: placing a table intent moves gen, and nothing is
//     stored while a table intent is live.

// prelude defines helpers shared by all scripts.
const prelude = `
local nowms = nil
local function now()
  if nowms == nil then
    local t = redis.call('TIME')
    nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return nowms
end

-- hgetall(key): the hash's fields, or nil after deleting a key of another
-- type (a corrupt entry).
local function hgetall(key)
  local h = redis.pcall('HGETALL', key)
  if type(h) == 'table' and h.err then
    redis.call('DEL', key)
    return nil
  end
  return h
end

-- meta(newgen): current generation and whether a live table intent exists.
local function meta(newgen)
  local m = hgetall(KEYS[1]) or {}
  local gen, locked, dead = nil, false, false
  for i = 1, #m, 2 do
    local f = m[i]
    if f == 'gen' then gen = m[i+1]
    elseif string.sub(f, 1, 2) == 'w:' then
      if tonumber(m[i+1]) > now() then locked = true
      else redis.call('HDEL', KEYS[1], f); dead = true end
    end
  end
  if gen == nil then
    -- A new incarnation of the table's meta hash: Redis lost its data
    -- (FLUSHALL, restart, eviction), or this is the first use. Clients
    -- that knew the previous incarnation stop filling for a while.
    gen = newgen
    redis.call('HSET', KEYS[1], 'gen', gen, 'inc', newgen)
  elseif dead then
    gen = newgen
    redis.call('HSET', KEYS[1], 'gen', gen)
  end
  return gen, locked
end

-- row(key): the fields of a row hash, dead intents removed (which moves
-- the row's version and the table's sequence: the dead writer may have
-- committed).
local function row(key)
  local r = {intents = 0}
  local h = hgetall(key)
  if h == nil then
    r.corrupt = true
    return r
  end
  local dead = false
  for i = 1, #h, 2 do
    local f = h[i]
    if string.sub(f, 1, 2) == 'i:' then
      if tonumber(h[i+1]) > now() then r.intents = r.intents + 1
      else redis.call('HDEL', key, f); dead = true end
    else r[f] = h[i+1] end
  end
  if dead then
    r.n = tostring(redis.call('HINCRBY', key, 'n', 1))
    redis.call('HINCRBY', KEYS[1], 's', 1)
  end
  return r
end

local function keepalive(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl < ms then redis.call('PEXPIRE', key, ms) end
end
`

// fillScript stores images read from the database after a miss. ARGV:
// the gen and s the reader saw, a fresh generation, ttl ms, then per row
// key the n the reader saw ("" for none) and the image ("" = no row: store
// nothing). An image is stored only if nothing moved since the reader
// looked (see the top of this file). Returns the number of images stored.
var fillScript = redis.NewScript(prelude + `
local gen, tlocked = meta(ARGV[3])
if tlocked or gen ~= ARGV[1] then return 0 end
local seq = redis.call('HGET', KEYS[1], 's') or ''
local stored = 0
for k = 2, #KEYS do
  local key = KEYS[k]
  local want, img = ARGV[3 + 2*(k-1)], ARGV[4 + 2*(k-1)]
  local r = row(key)
  local n = r.n or ''
  if not r.corrupt and r.intents == 0 and n == want and (want ~= '' or seq == ARGV[2]) then
    if img ~= '' then
      redis.call('HSET', key, 'v', img, 'g', gen)
      redis.call('HDEL', key, 'c', 'l', 'ld')
      redis.call('PEXPIRE', key, tonumber(ARGV[4]))
      stored = stored + 1
    elseif r.v then
      redis.call('HDEL', key, 'v', 'g')
    end
  end
end
return stored
`)

// metaScript makes the table's meta hash when a Peek found none (first
// use, or Redis lost it), so that a fill has a generation to check.
// ARGV: a fresh generation. Returns {gen, inc, s}.
var metaScript = redis.NewScript(prelude + `
local gen = meta(ARGV[1])
return {gen, redis.call('HGET', KEYS[1], 'inc') or '', redis.call('HGET', KEYS[1], 's') or ''}
`)

// intentScript places write intents before a write commits.
// ARGV: writer token, lifetime ms, fresh generation, table-wide (1/0).
// With table-wide, KEYS holds only the meta key and a table intent is
// placed. Returns the generation.
var intentScript = redis.NewScript(prelude + `
local gen, tlocked = meta(ARGV[3])
local deadline = now() + tonumber(ARGV[2])
if ARGV[4] == '1' then
  -- Moving the generation now, not only at the release, retires every
  -- image at once: none stored before this instant is a hit any more, and
  -- no fill that looked before it can store.
  redis.call('HSET', KEYS[1], 'w:' .. ARGV[1], deadline, 'gen', ARGV[3])
  return ARGV[3]
end
for k = 2, #KEYS do
  local key = KEYS[k]
  local r = row(key)
  if r.intents > 0 then redis.call('HSET', key, 'c', '1') end
  redis.call('HSET', key, 'i:' .. ARGV[1], deadline)
  redis.call('HDEL', key, 'v', 'g', 'l', 'ld')
  redis.call('HINCRBY', key, 'n', 1)
  keepalive(key, tonumber(ARGV[2]))
end
if #KEYS > 1 then redis.call('HINCRBY', KEYS[1], 's', 1) end
return gen
`)

// releaseScript runs after the transaction ended (committed, rolled back,
// or unknown). ARGV: writer token, generation returned by the intent, fresh
// generation, ttl ms, table-wide (1/0), bump (1/0), then one image per row
// key ("" = store nothing).
//
// Table-wide: removes the table intent and, with bump, moves the generation.
// Rows: removes the row intent and moves the row's version; stores the
// image only when no other intent is live, the row was never contended, our
// intent was still there, the table is not locked and its generation is
// the one the intent saw. Returns the number of images stored.
var releaseScript = redis.NewScript(prelude + `
local gen, tlocked = meta(ARGV[3])
if ARGV[5] == '1' then
  redis.call('HDEL', KEYS[1], 'w:' .. ARGV[1])
  if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'gen', ARGV[3]) end
  return 0
end
local stored = 0
for k = 2, #KEYS do
  local key = KEYS[k]
  local mine = redis.call('HDEL', key, 'i:' .. ARGV[1])
  local r = row(key)
  redis.call('HINCRBY', key, 'n', 1)
  local img = ARGV[5 + k]
  if r.intents == 0 then
    if mine == 1 and r.c == nil and img ~= '' and not tlocked and gen == ARGV[2] then
      redis.call('HSET', key, 'v', img, 'g', gen)
      redis.call('PEXPIRE', key, tonumber(ARGV[4]))
      stored = stored + 1
    else
      redis.call('HDEL', key, 'v', 'g', 'c')
    end
  end
end
if #KEYS > 1 then redis.call('HINCRBY', KEYS[1], 's', 1) end
return stored
`)

// discardScript removes an image that failed to decode, unless it has been
// replaced since. ARGV: the image.
var discardScript = redis.NewScript(`
if redis.call('TYPE', KEYS[1]).ok == 'hash' and redis.call('HGET', KEYS[1], 'v') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'v', 'g')
  return 1
end
return 0
`)

// naiveMirrorScript is NOT part of the protocol: it is the deliberately
// broken write-through that the consistency checker must catch (store the
// new images after commit, with no intents and no lease checks, as naive
// write-through caches do). ARGV: ttl ms, then one image per row key.
var naiveMirrorScript = redis.NewScript(`
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then return 0 end
for k = 2, #KEYS do
  local img = ARGV[k]
  if img == '' then redis.call('HDEL', KEYS[k], 'v', 'g')
  else
    redis.call('HSET', KEYS[k], 'v', img, 'g', gen)
    redis.call('PEXPIRE', KEYS[k], tonumber(ARGV[1]))
  end
end
return 1
`)
