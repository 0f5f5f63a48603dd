// Package recognize classifies SQL text sent to PostgreSQL, cheaply and
// conservatively, for the cache in front of it.
//
// [Classify] splits a text into statements where the server does and tells,
// for each one, whether it reads, writes, changes the schema, controls the
// transaction or the session, and which tables it writes. For the one shape
// the cache can serve, a SELECT of plain columns from one table filtered by
// ANDed equalities, it also returns a [Lookup] that describes the query.
// Classify allocates only its result; it is safe for concurrent use.
//
// # Conservative by construction
//
// A wrong "this is a primary-key lookup" would serve wrong data, so every
// doubt ends in no Lookup, and every statement whose effect cannot be told
// is [KindUnknown] with AllTables set. The recognizer does not know the
// schema, so the caller must still:
//
//   - check the table (a plain table, no row-level security) and that the
//     predicates pin its whole primary key; every Pred counts, and a column
//     may appear in several (a = 1 AND a = 2 matches nothing);
//   - check every column name against the table: an unqualified name that is
//     not a column may be a whole-row reference to the table or its alias,
//     and system columns (ctid, xmin) are not in the row image;
//   - convert literals with the column's type and refuse what does not
//     convert exactly: Value.Literal of a number is decimal text ("007" is
//     seven, not octal; "1.5" or "1e3" against an integer key are the
//     caller's call), and '5' or ' 5' against an integer column are what
//     the server's input function makes of them;
//   - beware text keys under a nondeterministic collation and char(n) keys,
//     where several spellings are equal: key the cache by the row's value.
//
// # Assumptions and known gaps
//
//   - standard_conforming_strings is on (the default since PostgreSQL 9.1,
//     and required by pgx's simple protocol), and the client encoding is
//     UTF-8 (pgx sets it). A backslash in a plain '...' string makes a Lookup
//     impossible, but statement splitting follows the standard rules.
//   - Unquoted identifiers are folded as a UTF-8 server does (ASCII letters
//     only). A Lookup never contains an unquoted non-ASCII name; the Tables
//     of writes and DDL assume a UTF-8 server encoding.
//   - A SELECT is KindRead even when it calls a function: functions,
//     triggers and rules that write other tables, sequences (nextval) and
//     set_config('search_path', ...) are invisible here.
//   - Writes to a partitioned or inherited parent are attributed to the
//     parent only; ON DELETE/UPDATE CASCADE is the caller's business.
//   - SET, RESET and DISCARD are KindSession; the caller must notice those
//     that change name resolution or privileges (search_path, ROLE, SESSION
//     AUTHORIZATION, DISCARD TEMP/ALL).
//   - Anything that looks like a write is taken as one: a column named
//     update or delete (unquoted) makes a SELECT a KindWrite with AllTables.
package recognize
