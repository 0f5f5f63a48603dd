package wtcache

import (
	"errors"
	"testing"
	"time"
)

// TestFlightsJoinRule: a reader joins a running read only when that read
// began after the reader started and reads with the same description of
// the table; a joiner hears the leader's answer, or its error.
func TestFlightsJoinRule(t *testing.T) {
	var fs flights
	ti, tiAfterDDL := &tableInfo{}, &tableInfo{}
	early := time.Now()
	time.Sleep(time.Millisecond)
	f, leader := fs.startOrJoin("k", ti, time.Now())
	if !leader {
		t.Fatal("the first reader must lead")
	}
	if g, leader := fs.startOrJoin("k", ti, early); leader || g != f {
		t.Fatal("a reader that started before the read began must join it")
	}
	beforeSecond := time.Now()
	time.Sleep(time.Millisecond)
	if g, leader := fs.startOrJoin("k", tiAfterDDL, early); !leader || g == f {
		t.Fatal("a reader with another description of the table joined")
	}
	// The newest flight is now tiAfterDDL's; f still ends for its joiners.
	if _, leader := fs.startOrJoin("k", tiAfterDDL, beforeSecond); leader {
		t.Fatal("a reader that started before the newest read began must join it")
	}
	if _, leader := fs.startOrJoin("k", tiAfterDDL, time.Now()); !leader {
		t.Fatal("a reader that started after the read began joined it: its answer may predate a write the reader must see")
	}
	boom := errors.New("boom")
	fs.finish("k", f, nil, boom)
	if _, err := f.wait(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("joiner heard %v, want the leader's error", err)
	}
}
