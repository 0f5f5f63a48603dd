// Command wtcache holds wtcache's operational tasks.
//
//	go run github.com/wtcache/wtcache/cmd/wtcache setup DSN [publication]
//	go run github.com/wtcache/wtcache/cmd/wtcache audit WTCACHE_DSN [sample]
//
// setup makes, once per database, what the change feed (cache_feed=on)
// needs: a publication FOR ALL TABLES and the event trigger that writes
// DDL, GRANT and REVOKE into the log. Run it as a superuser; the server
// must run with wal_level=logical. DSN is a PostgreSQL DSN as pgx takes it.
//
// audit compares the entries in Redis that a reader could be served with
// their rows in PostgreSQL and prints every difference (table, key, what
// differs); it exits with status 1 when there is one. WTCACHE_DSN is the
// application's wtcache DSN (cache_redis, cache_prefix, cache_feed as the
// application sets them); sample is the fraction of entries checked
// (default 1, every entry).
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wtcache/wtcache"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wtcache:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  wtcache setup DSN [publication]   make the publication and event trigger the change feed needs
  wtcache audit WTCACHE_DSN [sample] compare what Redis would serve with PostgreSQL`

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("%s", usage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch args[0] {
	case "setup":
		db, err := sql.Open("pgx", args[1])
		if err != nil {
			return err
		}
		defer db.Close()
		pub := ""
		if len(args) > 2 {
			pub = args[2]
		}
		if err := wtcache.SetupFeed(ctx, db, pub); err != nil {
			return err
		}
		fmt.Println("change feed set up: publication and event trigger wtcache_ddl in place")
		return nil
	case "audit":
		db, err := sql.Open(wtcache.DriverName, args[1])
		if err != nil {
			return err
		}
		defer db.Close()
		opts := wtcache.AuditOptions{}
		if len(args) > 2 {
			if opts.Sample, err = strconv.ParseFloat(args[2], 64); err != nil || opts.Sample <= 0 || opts.Sample > 1 {
				return fmt.Errorf("sample %q is not a fraction in (0, 1]", args[2])
			}
		}
		rep, err := wtcache.Audit(ctx, db, opts)
		if err != nil {
			return err
		}
		fmt.Printf("%d entries, %d checked, %d not servable to this session, %d differences\n", rep.Entries, rep.Checked, rep.Skipped, len(rep.Diffs))
		for _, d := range rep.Diffs {
			fmt.Printf("  %s key %s: %s\n", d.Table, d.Key, d.Detail)
		}
		if len(rep.Diffs) > 0 {
			os.Exit(1)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
