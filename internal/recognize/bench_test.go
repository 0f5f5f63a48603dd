package recognize

import "testing"

// benchQueries are typical texts: GORM's First (a Lookup), an ent lookup
// with its column list, GORM's soft delete (a Write with predicates), and a
// join (a read that is not a Lookup).
var benchQueries = []struct{ name, sql string }{
	{"GormFirst", `SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT $2`},
	{"EntColumns", `SELECT "users"."id", "users"."age", "users"."name" FROM "users" WHERE "users"."id" = $1 LIMIT 2`},
	{"BunLiteral", `SELECT "a"."id", "a"."owner" FROM "accounts" AS "a" WHERE ("a"."id" = 5)`},
	{"GormUpdate", `UPDATE "users" SET "deleted_at"=$1 WHERE "users"."id" = $2 AND "users"."deleted_at" IS NULL`},
	{"GormInsert", `INSERT INTO "users" ("created_at","updated_at","deleted_at","name","age") VALUES ($1,$2,$3,$4,$5) RETURNING "id"`},
	{"Join", `SELECT u.id, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = $1`},
	{"TxScript", `begin; update accounts set balance = balance - $1 where id = $2; commit`},
}

func BenchmarkClassify(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(q.sql)))
			for b.Loop() {
				Classify(q.sql)
			}
		})
	}
}

// BenchmarkClassifyParallel runs the lookup of GORM's First on every
// processor: the scratch buffers come from a sync.Pool.
func BenchmarkClassifyParallel(b *testing.B) {
	q := benchQueries[0].sql
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			Classify(q)
		}
	})
}
