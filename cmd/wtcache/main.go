// Command wtcache holds wtcache's operational tasks.
//
//	go run github.com/wtcache/wtcache/cmd/wtcache setup DSN [publication]
//
// setup makes, once per database, what the change feed (cache_feed=on)
// needs: a publication FOR ALL TABLES and the event trigger that writes
// DDL, GRANT and REVOKE into the log. Run it as a superuser; the server
// must run with wal_level=logical. DSN is a PostgreSQL DSN as pgx takes it.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
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
  wtcache setup DSN [publication]   make the publication and event trigger the change feed needs`

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
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
