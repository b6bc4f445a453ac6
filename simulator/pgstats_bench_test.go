package simulator_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// statementStats, with LOCKSTEP_BENCH_PG_STATS=1, shows where PostgreSQL's
// time went during a benchmark's measured part: begin resets
// pg_stat_statements (the server must preload it:
// shared_preload_libraries = 'pg_stat_statements', and the extension be
// created in the database TEST_DATABASE_URL names), and the returned function
// prints the statements that took the most time since. Without the
// variable both do nothing.
func statementStats(b *testing.B) (end func()) {
	if os.Getenv("LOCKSTEP_BENCH_PG_STATS") == "" {
		return func() {}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("TEST_DATABASE_URL"))
	if err != nil {
		b.Fatalf("pg stats: %v", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		b.Fatalf("pg stats (is pg_stat_statements preloaded and created?): %v", err)
	}
	return func() {
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT calls, total_exec_time, rows, query FROM pg_stat_statements
			WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT 15`)
		if err != nil {
			b.Logf("pg stats: %v", err)
			return
		}
		defer rows.Close()
		var sb strings.Builder
		sb.WriteString("PostgreSQL statements during the measured part (calls, total ms, mean ms, rows):\n")
		for rows.Next() {
			var calls, n int64
			var total float64
			var q string
			if err := rows.Scan(&calls, &total, &n, &q); err != nil {
				b.Logf("pg stats: %v", err)
				return
			}
			q = strings.Join(strings.Fields(q), " ")
			fmt.Fprintf(&sb, "%7d %9.1f %7.3f %7d  %.110s\n", calls, total, total/float64(calls), n, q)
		}
		b.Log(sb.String())
	}
}
