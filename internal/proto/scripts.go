package proto

import "github.com/redis/go-redis/v9"

// Every script touches the keys of one table only. Those keys share a hash
// tag, so each script runs on one Redis Cluster slot; every key a script
// touches is passed to it in KEYS.
//
// Per table, with T the table's hash tag ({prefix:database:schema.table}):
//   T:g        string "<gen> <inc> <s>":
//              gen  the table's generation, a random token; images stored
//                   under another generation are misses;
//              inc  the incarnation, made with the key: a new one tells a
//                   client that Redis lost the table's state since it last
//                   looked;
//              s    the table's write sequence: moves at every row intent,
//                   every release of one and every dead intent removed; it
//                   starts at the server's clock (ms) when the key is made.
//              Absent: a fresh one is made (first use, or Redis lost it).
//   T:t        hash of table-wide write intents, w:<token> = deadline (ms,
//              server time)
// Per row, with K its normalised key:
//   T:v:K      string "<gen> <image>" (or "<gen>/<epoch> <image>" with a
//              change feed): the row image and the generation (and the
//              feed's stream epoch) it was stored under
//   T:n:K      string, the row's version "<s>.<inc>": the table's write
//              sequence at the last intent placed on the row, release of
//              one, or dead intent removed, and the incarnation it was
//              given in (so a value is never reused), with a final "*"
//              while an intent may be live on the row
//   T:r:K      hash of row write intents, i:<token> = deadline (ms), and c
//              (contended: a second intent arrived while one was live)
// Scripts take KEYS = T:t, T:g, then T:r:K, T:v:K, T:n:K for each row.
//
// A read is one command (Peek: MGET T:g T:v:K T:n:K ...). A row whose image
// carries the current gen is a hit. For a miss the reader keeps what it
// saw, reads PostgreSQL, and fills under the condition that nothing moved
// since it looked: the same gen, no live table or row intent, the same n
// (or, where the row had no n, the same s), and no intent mark in what it
// saw (its read may then precede that write's commit). Every write places
// an intent before it commits, which sets n to a new value and marks it (a
// table intent moves gen), and releases it after, which sets n to another
// new value, so a fill whose database read may have missed a write is
// refused. That replaces a lease: nothing is written on a miss before the
// database read, and no condition depends on when the fill arrives.
//
// An intent whose deadline has passed is dead: its writer crashed or lost
// Redis. A dead table intent may hide a committed write, so whoever finds
// one removes it and moves the generation on; a dead row intent moves n.
// An intent mark whose intent is gone (its hash expired or was evicted) is
// cleared the same way.
//
// Invariants that let Peek decide a hit from T:g and T:v:K alone:
//   - a row with a live intent has no image: placing an intent deletes
//     T:v:K; fills and releases store it only where no intent is live;
//   - an image of the table's current gen was stored while no table intent
//     was live: placing a table intent moves gen, and nothing is stored
//     while a table intent is live.

// prelude defines helpers shared by all scripts.
const prelude = `
local GRACE = 10000 -- ms an intent hash and a version outlive their intent
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

-- getstr(key): the string at key (nil when absent), or nil and corrupt
-- after deleting a key of another type.
local function getstr(key)
  local x = redis.pcall('GET', key)
  if type(x) == 'table' and x.err then
    redis.call('DEL', key)
    return nil, true
  end
  if x == false then return nil, false end
  return x, false
end

-- The table's state, as read by meta() and changed by the helpers below.
-- Moves of the sequence are written once, by done(), which every script
-- returns through: a script is atomic, so nobody sees T:g in between. A
-- Lua error after a move would skip done() while keeping the versions
-- already written (Redis does not roll a script back), so nothing after
-- the first move may fail: keys of the wrong type are deleted before they
-- are used, SET overwrites any type, and every TTL given is at least 1 ms.
local G = {}
local function putg()
  redis.call('SET', KEYS[2], G.gen .. ' ' .. G.inc .. ' ' .. G.s)
  G.dirty = false
end
local function bumps()
  G.s = tostring(tonumber(G.s) + 1)
  G.dirty = true
end
local function setgen(gen)
  G.gen = gen
  putg()
end
-- done(x): writes what is left of the table's state, and returns x.
local function done(x)
  if G.dirty then putg() end
  return x
end

-- meta(newgen): current generation and whether a live table intent exists.
local function meta(newgen)
  local x = getstr(KEYS[2])
  local gen, inc, s = nil, nil, nil
  if x then gen, inc, s = string.match(x, '^(%S+) (%S+) (%d+)$') end
  local m = hgetall(KEYS[1]) or {}
  local locked, dead = false, false
  for i = 1, #m, 2 do
    local f = m[i]
    if string.sub(f, 1, 2) == 'w:' and tonumber(m[i+1]) then
      if tonumber(m[i+1]) > now() then locked = true
      else redis.call('HDEL', KEYS[1], f); dead = true end
    else redis.call('HDEL', KEYS[1], f) end
  end
  if gen == nil then
    -- A new incarnation: Redis lost the table's state (FLUSHALL, a
    -- restart, eviction), or this is the first use. Clients that knew the
    -- previous incarnation stop filling for a while.
    G = {gen = newgen, inc = newgen, s = tostring(now())}
    putg()
  else
    G = {gen = gen, inc = inc, s = s}
    if dead then setgen(newgen) end
  end
  return G.gen, locked
end

local function keepalive(key, ms)
  if ms <= 0 then return end
  local ttl = redis.call('PTTL', key)
  if ttl < ms then redis.call('PEXPIRE', key, ms) end
end

-- setn(j, marked, px): a new version for the j-th row, from the table's
-- sequence and incarnation (so never reused, even when Redis lost the
-- table's state and a new sequence started below the old one), marked
-- while an intent may be live. With px the version key lives px ms from
-- now; without, it keeps its TTL. (A version may expire at any time
-- without harm: a reader that finds none compares the table's sequence
-- instead, which moves at every intent and release.)
local function setn(j, marked, px)
  bumps()
  local v = G.s .. '.' .. G.inc
  if marked then v = v .. '*' end
  if px then redis.call('SET', KEYS[3*j+2], v, 'PX', px)
  else redis.call('SET', KEYS[3*j+2], v, 'KEEPTTL') end
  return v
end

-- row(j, own): the intents of the j-th row (KEYS[3j], KEYS[3j+1],
-- KEYS[3j+2] are its intent hash, image and version), dead intents
-- removed; st.fresh when it had no intent hash. Removing a dead intent, or
-- finding an intent mark without a live intent (its hash expired or was
-- evicted), sets a new version: the writer may have committed. With own,
-- the caller (an intent, a release) sets a new version itself, so the
-- version is neither read nor set here.
local function row(j, own)
  local r, n = KEYS[3*j], KEYS[3*j+2]
  local st = {intents = 0}
  local h = hgetall(r)
  if h == nil then st.corrupt = true; h = {} end
  st.fresh = #h == 0
  local dead = false
  for i = 1, #h, 2 do
    local f = h[i]
    if string.sub(f, 1, 2) == 'i:' then
      if tonumber(h[i+1]) and tonumber(h[i+1]) > now() then st.intents = st.intents + 1
      else redis.call('HDEL', r, f); dead = true end
    elseif f == 'c' then st.c = true
    elseif string.sub(f, 1, 2) == 'f:' then
      -- A change the feed read while an intent was live, by transaction.
      st.feed = st.feed or {}
      st.feed[string.sub(f, 3)] = true
    end
  end
  if own then return st end
  local nv, bad = getstr(n)
  if bad then
    st.corrupt, nv = true, nil
  end
  st.n = nv
  if dead or (nv and st.intents == 0 and string.sub(nv, -1) == '*') then
    st.n = setn(j, st.intents > 0)
    keepalive(n, GRACE)
  end
  return st
end

local function rows() return (#KEYS - 2) / 3 end

-- ttlms(x): a TTL argument, at least 1 ms.
local function ttlms(x) return math.max(1, tonumber(x)) end
`

// fillScript stores images read from the database after a miss. ARGV:
// the gen and s the reader saw, a fresh generation, ttl ms, the change
// feed's epoch the reader knew ("" for none), then per row the n the reader
// saw ("" for none) and the value to store: the image after its tag, "<gen>
// " or "<gen>/<epoch> " with the gen the reader saw ("" = no row: store
// nothing; the script stores only under that gen, so the tag is the one it
// would write, and Redis builds no string per row). An image is stored
// only if nothing moved since the reader looked (see the top of this
// file). Returns {images stored, keys of the wrong type found and
// removed}.
//
// The common case takes one command per row: when no row of the batch has
// an intent hash (so no live intent, no dead one to remove, no contention
// mark to clear) and every version is a string or absent, unmarked, the
// versions are read with one MGET and each image is stored with one SET
// (whose GET option finds an image key of the wrong type). An intent
// always sets its row's version marked, and only a script that finds no
// live intent unmarks it, so an unmarked version equal to the one the
// reader saw means no intent was placed since, live or not; an absent one,
// with the table's sequence unchanged, the same. Anything else takes the
// row-by-row path below it.
var fillScript = redis.NewScript(prelude + `
-- put(j, img): stores the j-th row's image ('' deletes it) and returns
-- {stored, corrupt}; an image key of another type (SET ... GET refuses
-- it) is replaced and counted.
local function put(j, img)
  local v = KEYS[3*j+1]
  if img == '' then
    redis.call('DEL', v)
    return 0, 0
  end
  local ttl = ttlms(ARGV[4])
  local x = redis.pcall('SET', v, img, 'PX', ttl, 'GET')
  if type(x) == 'table' and x.err then
    redis.call('DEL', v)
    redis.call('SET', v, img, 'PX', ttl)
    return 1, 1
  end
  return 1, 0
end
local gen0, tlocked0 = meta(ARGV[3])
local nrows = rows()
if not tlocked0 and gen0 == ARGV[1] and nrows <= 2000 then
  local rk, nk = {}, {}
  for j = 1, nrows do rk[j] = KEYS[3*j]; nk[j] = KEYS[3*j+2] end
  local fast = redis.call('EXISTS', unpack(rk)) == 0
  local ns
  if fast then
    ns = redis.call('MGET', unpack(nk))
    local absent = {}
    for j = 1, nrows do
      if not ns[j] then absent[#absent + 1] = nk[j]
      elseif string.sub(ns[j], -1) == '*' then fast = false end
    end
    -- MGET answers nothing for a key of another type: EXISTS tells.
    if fast and #absent > 0 then fast = redis.call('EXISTS', unpack(absent)) == 0 end
  end
  if fast then
    local stored, corrupt = 0, 0
    for j = 1, nrows do
      local want, img = ARGV[4 + 2*j], ARGV[5 + 2*j]
      -- n is unmarked (or the fast path was not taken), so n == want
      -- means the reader saw no intent mark either.
      local n = ns[j] or ''
      if n == want and (want ~= '' or G.s == ARGV[2]) then
        local s, c = put(j, img)
        stored, corrupt = stored + s, corrupt + c
      end
    end
    return done({stored, corrupt})
  end
end
-- Keys of the wrong type are garbage: removed, and counted.
local corrupt = 0
for j = 1, rows() do
  local v = KEYS[3*j+1]
  local t = redis.call('TYPE', v).ok
  if t ~= 'string' and t ~= 'none' then
    redis.call('DEL', v)
    corrupt = corrupt + 1
  end
end
local gen, tlocked = gen0, tlocked0
if tlocked or gen ~= ARGV[1] then return done({0, corrupt}) end
local seq = G.s
local stored = 0
for j = 1, rows() do
  local want, img = ARGV[4 + 2*j], ARGV[5 + 2*j]
  local st = row(j)
  if st.corrupt then corrupt = corrupt + 1 end
  local n = st.n or ''
  local marked = string.sub(want, -1) == '*'
  if not st.corrupt and not marked and st.intents == 0 and n == want and (want ~= '' or seq == ARGV[2]) then
    local s = put(j, img) -- image keys of another type are gone already
    if s == 1 and st.c then redis.call('HDEL', KEYS[3*j], 'c') end
    stored = stored + s
  end
end
return done({stored, corrupt})
`)

// metaScript makes the table's state when a Peek found none (first use,
// or Redis lost it), so that a fill has a generation to check.
// ARGV: a fresh generation. Returns {gen, inc, s}.
var metaScript = redis.NewScript(prelude + `
meta(ARGV[1])
return done({G.gen, G.inc, G.s})
`)

// intentScript places write intents before a write commits.
// ARGV: writer token, lifetime ms, fresh generation, table-wide (1/0).
// With table-wide, KEYS holds only the table's keys and a table intent is
// placed. Returns the generation.
var intentScript = redis.NewScript(prelude + `
local gen, tlocked = meta(ARGV[3])
local life = tonumber(ARGV[2])
local deadline = now() + life
if ARGV[4] == '1' then
  -- Moving the generation now, not only at the release, retires every
  -- image at once: none stored before this instant is a hit any more, and
  -- no fill that looked before it can store.
  redis.call('HSET', KEYS[1], 'w:' .. ARGV[1], deadline)
  setgen(ARGV[3])
  return done(ARGV[3])
end
for j = 1, rows() do
  local r, v, n = KEYS[3*j], KEYS[3*j+1], KEYS[3*j+2]
  local st = row(j, true)
  if st.intents > 0 then redis.call('HSET', r, 'c', '1') end
  redis.call('HSET', r, 'i:' .. ARGV[1], deadline)
  redis.call('DEL', v)
  -- The intent hash and the version outlive the intent, so that whoever
  -- comes after its deadline finds it dead rather than gone. A row
  -- without an intent hash (the common case) gets both TTLs set outright;
  -- otherwise they are only ever extended, for the other writers' sake.
  if st.fresh then
    setn(j, true, life + GRACE)
    redis.call('PEXPIRE', r, life + GRACE)
  else
    setn(j, true)
    keepalive(r, life + GRACE)
    keepalive(n, life + GRACE)
  end
end
return done(gen)
`)

// releaseScript runs after the transaction ended (committed, rolled back,
// or unknown). ARGV: writer token, generation returned by the intent, fresh
// generation, ttl ms, table-wide (1/0), bump (1/0), the writing
// transaction's xid ("" = unknown), the change feed's epoch the writer knew
// at its intent ("" = none; images are stored under it), then one image per
// row ("" = store nothing).
//
// Table-wide: removes the table intent and, with bump, moves the generation.
// Rows: removes the row intent and sets a new version; stores the
// image only when no other intent is live, the row was never contended, our
// intent was still there, the table is not locked and its generation is
// the one the intent saw. Returns the number of images stored.
var releaseScript = redis.NewScript(prelude + `
local gen, tlocked = meta(ARGV[3])
local xid = ARGV[7]
local tag = gen
if ARGV[8] ~= '' then tag = gen .. '/' .. ARGV[8] end
if ARGV[5] == '1' then
  redis.call('HDEL', KEYS[1], 'w:' .. ARGV[1])
  if ARGV[6] == '1' then setgen(ARGV[3]) end
  return done(0)
end
local stored = 0
local nlife = math.max(ttlms(ARGV[4]), GRACE)
for j = 1, rows() do
  local r, v, n = KEYS[3*j], KEYS[3*j+1], KEYS[3*j+2]
  local st = row(j, true) -- counts our intent if it is still live
  local mine = redis.call('HDEL', r, 'i:' .. ARGV[1])
  local others = st.intents - mine
  if others == 0 then
    setn(j, false, nlife)
  else
    -- Others' intents are live: their version must outlive them.
    setn(j, true)
    keepalive(n, nlife)
  end
  local img = ARGV[8 + j]
  -- Changes the feed read during the intent: only this write's own
  -- commit (its echo) leaves the image storable.
  local foreign = false
  if st.feed then
    for x, _ in pairs(st.feed) do
      if x ~= xid or xid == '' then foreign = true end
      if others == 0 then redis.call('HDEL', r, 'f:' .. x) end
    end
  end
  if others == 0 then
    if mine == 1 and not st.c and not foreign and img ~= '' and not tlocked and gen == ARGV[2] then
      redis.call('SET', v, tag .. ' ' .. img, 'PX', ttlms(ARGV[4]))
      stored = stored + 1
      if xid ~= '' then
        -- The transaction that wrote this image: its echo in the change
        -- feed keeps it (forgetScript).
        redis.call('HSET', r, 'x', xid)
        keepalive(r, GRACE)
      end
    else
      redis.call('DEL', v)
      if st.c then redis.call('HDEL', r, 'c') end
    end
  elseif mine == 0 then
    -- Our intent was lost (Redis lost it, or it died) while others are
    -- live: none of them may store its image, ours may be the later write.
    redis.call('HSET', r, 'c', '1')
    redis.call('DEL', v)
  end
end
return done(stored)
`)

// forgetScript applies a committed change read from PostgreSQL's log (the
// change feed) to rows of one table. ARGV: the committing transaction's xid
// ("" = unknown), a fresh generation. Per row: unless the row has no live
// intent and holds the image that xid's own release stored (x = xid), its
// image is deleted and it gets a new version; with a live intent the change
// is recorded as f:<xid>, and a release stores its image only if every such
// change is its own transaction's commit (otherwise the writer's image may
// predate the change). A table without state is left
// alone: nothing of it is cached, and a reader that makes its state later
// reads the database after this change. Returns the rows invalidated.
var forgetScript = redis.NewScript(prelude + `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
meta(ARGV[2])
local xid = ARGV[1]
local n = 0
for j = 1, rows() do
  local r, v = KEYS[3*j], KEYS[3*j+1]
  local st = row(j)
  local echo = false
  if st.intents == 0 and xid ~= '' and not st.corrupt then
    echo = redis.call('HGET', r, 'x') == xid and redis.call('EXISTS', v) == 1
  end
  if not echo then
    if st.intents > 0 then
      -- A live intent's release must not store an image older than this
      -- change; if this change is that write's own commit, it may.
      if xid ~= '' then redis.call('HSET', r, 'f:' .. xid, '1')
      else redis.call('HSET', r, 'c', '1') end
      setn(j, true)
      keepalive(KEYS[3*j+2], GRACE)
    else
      setn(j, false, GRACE)
    end
    redis.call('DEL', v)
    redis.call('HDEL', r, 'x')
    n = n + 1
  end
end
return done(n)
`)

// bumpScript moves a table's generation (the change feed: TRUNCATE, a
// schema change, a change it cannot attribute to rows, a new follower that
// may have missed changes). ARGV: a fresh generation. A table without state
// is left alone. Returns 1 when it moved the generation.
var bumpScript = redis.NewScript(prelude + `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
meta(ARGV[1])
setgen(ARGV[1])
return done(1)
`)

// naiveMirrorScript is NOT part of the protocol: it is the deliberately
// broken write-through that the consistency checker must catch (store the
// new images after commit, with no intents and no fill conditions, as naive
// write-through caches do). KEYS as the other scripts; ARGV: ttl ms, then
// one image per row.
var naiveMirrorScript = redis.NewScript(`
local x = redis.call('GET', KEYS[2])
if not x then return 0 end
local gen = string.match(x, '^(%S+)')
for j = 1, (#KEYS - 2) / 3 do
  local img = ARGV[1 + j]
  if img == '' then redis.call('DEL', KEYS[3*j+1])
  else redis.call('SET', KEYS[3*j+1], gen .. ' ' .. img, 'PX', math.max(1, tonumber(ARGV[1]))) end
end
return 1
`)

// The database's state, one hash per database and key prefix
// ({prefix:database}:db, its own hash tag):
//   e          the database epoch: images are stored under it, and a reader
//              serves only images of the epoch it knows; a new epoch
//              retires every image of the database in O(1)
//   c          the catalog token: a new one tells every process to forget
//              what it knows of the catalog (DDL, GRANT, REVOKE)
//   w:<token>  a database-wide write intent, with its deadline (ms, server
//              time): while one is live no process serves or fills
//   n          a counter every poll moves (seen going back: Redis lost
//              acknowledged writes)
// A dead database-wide intent may hide a committed write: whoever finds one
// removes it and moves the epoch.

// dbPollScript reads the database's state, making it when it is missing.
// ARGV: a fresh token. Returns {epoch, catalog, locked (0/1), poll count}.
var dbPollScript = redis.NewScript(prelude + `
local h = hgetall(KEYS[1]) or {}
local e, c, locked, dead = nil, nil, false, false
for i = 1, #h, 2 do
  local f = h[i]
  if f == 'e' then e = h[i+1]
  elseif f == 'c' then c = h[i+1]
  elseif string.sub(f, 1, 2) == 'w:' then
    if tonumber(h[i+1]) and tonumber(h[i+1]) > now() then locked = true
    else redis.call('HDEL', KEYS[1], f); dead = true end
  end
end
if e == nil or dead then
  e = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', e)
end
if c == nil then
  c = ARGV[1] .. 'c'
  redis.call('HSET', KEYS[1], 'c', c)
end
-- A counter every poll moves: a process that sees it go back knows Redis
-- lost writes it acknowledged (a restart from a snapshot, a failover to a
-- replica that lagged).
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
return {e, c, locked and 1 or 0, n}
`)

// dbLockScript places a database-wide write intent. ARGV: token, lifetime
// ms, a fresh token (for a missing state). Returns 1.
var dbLockScript = redis.NewScript(prelude + `
local h = hgetall(KEYS[1]) or {}
local has = false
for i = 1, #h, 2 do if h[i] == 'e' then has = true end end
if not has then redis.call('HSET', KEYS[1], 'e', ARGV[3], 'c', ARGV[3] .. 'c') end
redis.call('HSET', KEYS[1], 'w:' .. ARGV[1], now() + tonumber(ARGV[2]))
return 1
`)

// dbReleaseScript ends a database-wide write intent and moves the epoch
// (every image of the database retired); with ARGV[3] = '1' the catalog
// token moves too. ARGV: token, fresh epoch, catalog (1/0), fresh catalog.
// It moves the epoch even when the intent was lost (Redis restarted).
var dbReleaseScript = redis.NewScript(prelude + `
redis.pcall('HDEL', KEYS[1], 'w:' .. ARGV[1])
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'hash' and t ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'e', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'c', ARGV[4]) end
return 1
`)

// checkScript calls every command the other scripts call, on two scratch
// keys of the caller's namespace, and leaves nothing behind.
var checkScript = redis.NewScript(`
redis.call('TIME')
redis.call('SET', KEYS[1], '1', 'PX', 1000)
redis.call('GET', KEYS[1])
redis.call('PTTL', KEYS[1])
redis.call('PEXPIRE', KEYS[1], 1000)
redis.call('TYPE', KEYS[1])
redis.call('EXISTS', KEYS[1])
redis.call('HSET', KEYS[2], 'f', '1')
redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('HGET', KEYS[2], 'f')
redis.call('HGETALL', KEYS[2])
redis.call('HDEL', KEYS[2], 'f')
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`)
