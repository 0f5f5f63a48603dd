package recognize

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHangScan(t *testing.T) {
	dir := os.Getenv("HANGDIR")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines := strings.SplitN(string(b), "\n", 3)
		s := strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")")
		q, err := strconv.Unquote(s)
		if err != nil {
			continue
		}
		done := make(chan struct{})
		go func() { Classify(q); Classify(" \n" + q + " "); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("hang on %s: %q", f, q)
		}
	}
}
