package wtcache

import (
	"context"
	"sync"
	"time"

	"github.com/wtcache/wtcache/internal/proto"
	"github.com/wtcache/wtcache/internal/rowcodec"
)

// Fills after misses are batched: a miss queues its fill, and within
// fillWindow one pipelined round trip runs every queued fill (each still
// the atomic, versioned fill script). On a busy handle that turns one
// Redis round trip, and its system calls, per miss into one per window;
// the fills' conditions do not depend on when they run (a later fill is
// only more likely to be refused).
const (
	fillWindow   = time.Millisecond
	fillQueueMax = 4096 // fills queued beyond this are dropped: a fill is optional
)

type fillQueue struct {
	mu      sync.Mutex
	pending []*fillJob
	armed   bool
}

// fillJob is a queued fill: the rows are encoded when the batch runs.
type fillJob struct {
	proto.FillJob
	rows []*rowcodec.Row
}

// queueFill queues j; the first job of a window arms the flush.
func (cn *connector) queueFill(j *fillJob) {
	q := &cn.fills
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= fillQueueMax {
		return
	}
	select {
	case <-cn.closed:
		return // Close is waiting for the last flush; a fill is optional
	default:
	}
	q.pending = append(q.pending, j)
	if !q.armed {
		q.armed = true
		cn.bg.Add(1) // settle and Close wait for the flush
		time.AfterFunc(fillWindow, cn.flushFills)
	}
}

func (cn *connector) flushFills() {
	defer cn.bg.Done()
	q := &cn.fills
	q.mu.Lock()
	jobs := q.pending
	q.pending, q.armed = nil, false
	q.mu.Unlock()
	if len(jobs) == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := cn.redisCtx(context.Background())
	defer cancel()
	cn.runFills(ctx, jobs)
	cn.tel.recordStep(ctx, SpanCacheFill, time.Since(start))
}

// runFills encodes the rows of jobs and runs their fills in one pipelined
// round trip, counting the keys of the wrong type they found.
func (cn *connector) runFills(ctx context.Context, jobs []*fillJob) {
	batch := make([]*proto.FillJob, len(jobs))
	for i, j := range jobs {
		j.Images = make([][]byte, len(j.rows))
		for k, r := range j.rows {
			if r == nil {
				continue
			}
			img, err := rowcodec.EncodeShaped(nil, r.Shape, r.Columns, r.Values)
			if err == nil {
				img = cn.cfg.seal.seal(j.Keys[k], img)
			}
			switch {
			case err != nil || img == nil:
			case len(img) > cn.cfg.maxEntry:
				cn.large.add(j.Keys[k])
			default:
				cn.large.remove(j.Keys[k])
				j.Images[k] = img
			}
		}
		batch[i] = &j.FillJob
	}
	if cn.cacheDown() {
		for _, j := range batch {
			j.Err = errCacheDown // a fill is optional
		}
		return
	}
	if cn.brokenFills.Load() {
		// The broken variant (tests only) stores what it read a little
		// later, as a loaded fill queue does, so that a write commits in
		// between often enough for the checker to show it (a 2-core CI
		// machine under -race found none in 20 s once).
		time.Sleep(5 * time.Millisecond)
		for _, j := range batch {
			_ = proto.NaiveMirror(ctx, cn.cfg.redis, j.Meta, j.Keys, j.TTLMs, j.Images)
		}
		return
	}
	proto.FillMany(ctx, cn.cfg.redis, batch)
	for _, j := range batch {
		cn.redisErr(nil, j.Err)
		for range j.Corrupt {
			cn.countCorrupt(ctx)
		}
	}
}
