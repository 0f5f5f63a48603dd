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
//   w:<token>  a table-wide write intent, value = deadline (ms, server time)
// Row hash (KEYS[2..]):
//   v          the row image            g   generation the image belongs to
//   i:<token>  a row write intent, value = deadline (ms)
//   c          contended: a second intent arrived while one was live
//   l, ld      the fill lease token and its deadline (ms)
//
// An intent whose deadline has passed is dead: its writer crashed or lost
// Redis. A dead table intent may hide a committed write, so whoever finds
// one removes it and moves the generation on.
//
// Invariants that let Peek decide a hit from v, g and gen alone:
//   - a row hash that holds v holds nothing else but g: placing an intent
//     deletes v and g; a lease is taken only where no valid image is (and
//     deletes a stale one); fills and releases store v only where no intent
//     is live, the row is not contended, and they remove the lease;
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

-- row(key): the fields of a row hash, dead intents removed.
local function row(key)
  local r = {intents = 0}
  local h = hgetall(key)
  if h == nil then
    r.corrupt = true
    return r
  end
  for i = 1, #h, 2 do
    local f = h[i]
    if string.sub(f, 1, 2) == 'i:' then
      if tonumber(h[i+1]) > now() then r.intents = r.intents + 1
      else redis.call('HDEL', key, f) end
    else r[f] = h[i+1] end
  end
  return r
end

local function keepalive(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl < ms then redis.call('PEXPIRE', key, ms) end
end
`

// readScript looks rows up. ARGV: lease token, lease ms, fresh generation.
// Returns {gen, r1, x1, r2, x2, ...}: per row one of
//
//	'H', image         a hit
//	'M', ''            a miss; the caller holds the lease (token ARGV[1])
//	'O', owner token   a miss; another reader holds the lease
//	'L', ''            a miss during a write: read the database, do not fill
var readScript = redis.NewScript(prelude + `
local gen, tlocked = meta(ARGV[3])
local out = {gen .. '/' .. (redis.call('HGET', KEYS[1], 'inc') or '')}
for k = 2, #KEYS do
  local key = KEYS[k]
  local r = row(key)
  if tlocked or r.intents > 0 then
    out[#out+1] = 'L'; out[#out+1] = r.corrupt and 'corrupt' or ''
  elseif r.v and r.g == gen then
    out[#out+1] = 'H'; out[#out+1] = r.v
  elseif r.l and tonumber(r.ld or '0') > now() then
    out[#out+1] = 'O'; out[#out+1] = r.l
  else
    if r.v then redis.call('HDEL', key, 'v', 'g') end
    redis.call('HSET', key, 'l', ARGV[1], 'ld', now() + tonumber(ARGV[2]))
    keepalive(key, tonumber(ARGV[2]))
    out[#out+1] = 'M'; out[#out+1] = r.corrupt and 'corrupt' or ''
  end
end
return out
`)

// fillScript stores images read from the database by the lease holder.
// ARGV: lease token, generation seen by the read, fresh generation, ttl ms,
// then one image per row key. It stores an image only if the lease is
// still ours, no intent arrived and the generation did not move.
// Returns the number of images stored.
var fillScript = redis.NewScript(prelude + `
local gen, tlocked = meta(ARGV[3])
local stored = 0
for k = 2, #KEYS do
  local key = KEYS[k]
  local r = row(key)
  if r.l == ARGV[1] then
    if not tlocked and r.intents == 0 and gen == ARGV[2] and ARGV[3 + k] ~= '' then
      redis.call('HSET', key, 'v', ARGV[3 + k], 'g', gen)
      redis.call('HDEL', key, 'l', 'ld')
      redis.call('PEXPIRE', key, tonumber(ARGV[4]))
      stored = stored + 1
    else
      redis.call('HDEL', key, 'l', 'ld')
    end
  end
end
return stored
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
  -- image at once: none stored before this instant is a hit any more.
  redis.call('HSET', KEYS[1], 'w:' .. ARGV[1], deadline, 'gen', ARGV[3])
  return ARGV[3]
end
for k = 2, #KEYS do
  local key = KEYS[k]
  local r = row(key)
  if r.intents > 0 then redis.call('HSET', key, 'c', '1') end
  redis.call('HSET', key, 'i:' .. ARGV[1], deadline)
  redis.call('HDEL', key, 'v', 'g', 'l', 'ld')
  keepalive(key, tonumber(ARGV[2]))
end
return gen
`)

// releaseScript runs after the transaction ended (committed, rolled back,
// or unknown). ARGV: writer token, generation returned by the intent, fresh
// generation, ttl ms, table-wide (1/0), bump (1/0), then one image per row
// key (” = store nothing).
//
// Table-wide: removes the table intent and, with bump, moves the generation.
// Rows: removes the row intent; stores the image only when no other intent
// is live, the row was never contended, our intent was still there, the
// table is not locked and its generation is the one the intent saw.
// Returns the number of images stored.
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
