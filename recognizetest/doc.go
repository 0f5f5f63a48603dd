// Package recognizetest is the differential test of internal/recognize
// against PostgreSQL's own parser (github.com/pganalyze/pg_query_go, the
// server's scanner and grammar compiled with cgo). It is a module of its own
// so that the library stays free of cgo; it has no code outside its tests.
//
// Run it with "make test-recognizer" (part of "make test"), or:
//
//	cd recognizetest && go test -count=1 ./...
//
// The tests:
//
//   - TestDifferential builds a deterministic corpus of some 85,000 texts
//     (testdata/corpus.sql, ORM shapes, every keyword in every name position,
//     a random SELECT generator, write statements in disguise, routine bodies,
//     token mutations) and checks every Lookup against the one derived from
//     the parse tree, that no statement running a write is KindRead, and that
//     statement boundaries are the server's. -v logs the key-lookup shapes
//     the recognizer refuses; RECOGNIZETEST_GAPS=file writes all of them.
//   - TestOracle checks the reference itself on hand-written expectations.
//   - TestLookupsOnServer asks a real server (WTCACHE_TEST_DATABASE) to parse
//     every text accepted as a Lookup.
//   - FuzzDifferential: go test -run '^$' -fuzz FuzzDifferential .
package recognizetest
