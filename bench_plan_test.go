package wtcache

import (
	"strconv"
	"testing"
)

// The recognizer's cost per statement, as the connection pays it through
// the plan cache: a statement text never seen before is classified (bun
// inlines every key, so every lookup is a new text), a text seen before is
// one map read.

const benchPlanText = `SELECT "a"."id", "a"."owner", "a"."balance" FROM "rp_acc" AS "a" WHERE ("a"."id" = `

func BenchmarkClassifyNew(b *testing.B) {
	texts := make([]string, b.N)
	for i := range texts {
		texts[i] = benchPlanText + strconv.Itoa(i) + ")"
	}
	pc := &planCache{max: 4096}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p := pc.get(texts[i]); p.lookup == nil {
			b.Fatalf("%s: not a lookup", texts[i])
		}
	}
}

func BenchmarkClassifySeen(b *testing.B) {
	text := benchPlanText + "42)"
	pc := &planCache{max: 4096}
	if p := pc.get(text); p.lookup == nil {
		b.Fatalf("%s: not a lookup", text)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p := pc.get(text); p.lookup == nil {
			b.Fatal("not a lookup")
		}
	}
}
