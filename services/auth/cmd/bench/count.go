package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// storeCounter counts what one request of each row costs the data stores, from the
// servers' own counters: Redis commands by name (INFO commandstats deltas) and, for the
// bench's own database, PostgreSQL transactions and rows written (pg_stat_database
// deltas).
// Requests go one at a time, nothing else driving the service; what runs on its own
// (the flag refresh, 1 HGETALL a second, and the clean-up jobs) is in the count too.
type storeCounter struct {
	rdb    redis.UniversalClient
	pgURL  string               // a database to read pg_stat_database from, not the one counted
	dbName string               // the service's database ("": PostgreSQL not counted)
	n      func(row string) int // requests per row
}

// pgStatFlush is how long PostgreSQL may hold a backend's counters before they reach
// pg_stat_database (PGSTAT_IDLE_INTERVAL is 10 s). A variable for the test, which
// does not wait for them.
var pgStatFlush = 11 * time.Second

func (s *storeCounter) count(ctx context.Context, rows []spec) error {
	// What the service does on its own (the outbox relay and the flag refresh poll, the
	// clean-up jobs run) in a window of nothing but the wait, per second: taken off. First
	// the counters of the load before have to land.
	time.Sleep(pgStatFlush)
	idleStart := time.Now()
	r0, p0, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	time.Sleep(pgStatFlush)
	r1, p1, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	idle := time.Since(idleStart).Seconds()
	bgRedis := map[string]float64{}
	for name, c := range r1 {
		bgRedis[name] = float64(c-r0[name]) / idle
	}
	bgPG := pgRate{float64(p1.xacts-p0.xacts) / idle, float64(p1.written-p0.written) / idle}
	var bg []string
	for name, r := range bgRedis {
		if r >= 0.05 && name != "info" && name != redisCPU {
			bg = append(bg, fmt.Sprintf("%s %.1f", strings.ToUpper(name), r))
		}
	}
	slices.Sort(bg)
	fmt.Fprintf(out, "\n# store operations per request, one request at a time; taken off: what the idle service does per second (Redis %s; PostgreSQL %.1f transactions, %.1f rows written)\n",
		strings.Join(bg, ", "), bgPG.xacts, bgPG.written)
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| route | requests | Redis commands per request (script bodies' commands included) | Redis CPU µs per request | PostgreSQL transactions per request | PostgreSQL rows written per request |")
	fmt.Fprintln(out, "|---|---:|---|---:|---:|---:|")
	for _, r := range rows {
		n := s.n(r.name)
		r0, p0, err := s.snapshot(ctx)
		if err != nil {
			return err
		}
		start := time.Now()
		ok := 0
		for range n {
			if st, err := r.d(ctx, 0); err == nil && st/100 == 2 {
				ok++
			}
		}
		redisSecs := time.Since(start).Seconds()
		r1, err := s.redisCalls(ctx)
		if err != nil {
			return err
		}
		p1 := p0
		if s.dbName != "" {
			time.Sleep(pgStatFlush)
			if p1, err = s.pgStats(ctx); err != nil {
				return err
			}
		}
		var cmds []string
		total := 0.0
		for name, c := range r1 {
			if d := (float64(c-r0[name]) - bgRedis[name]*redisSecs) / float64(n); d >= 0.005 && name != "info" && name != redisCPU {
				cmds = append(cmds, fmt.Sprintf("%s %.2f", strings.ToUpper(name), d))
				total += d
			}
		}
		slices.Sort(cmds)
		pg, tuples := "not counted", "not counted"
		if s.dbName != "" {
			secs := time.Since(start).Seconds()
			per := func(d int64, rate float64) float64 { return max(0, float64(d)-rate*secs) / float64(n) }
			pg = fmt.Sprintf("%.2f", per(p1.xacts-p0.xacts, bgPG.xacts))
			tuples = fmt.Sprintf("%.2f", per(p1.written-p0.written, bgPG.written))
		}
		cpu := (float64(r1[redisCPU]-r0[redisCPU]) - bgRedis[redisCPU]*redisSecs) / float64(n)
		fmt.Fprintf(out, "| %s | %d (%d ok) | %.2f: %s | %.0f | %s | %s |\n", r.name, n, ok, total, strings.Join(cmds, ", "), max(0, cpu), pg, tuples)
	}
	return nil
}

// snapshot reads both servers' counters.
func (s *storeCounter) snapshot(ctx context.Context) (map[string]int64, pgCounters, error) {
	r, err := s.redisCalls(ctx)
	if err != nil {
		return nil, pgCounters{}, err
	}
	p, err := s.pgStats(ctx)
	return r, p, err
}

// redisCPU is the key of redisCalls that holds the server's CPU time in µs.
const redisCPU = "(cpu)"

// redisCalls is INFO commandstats: calls by command name, and the server's CPU time.
func (s *storeCounter) redisCalls(ctx context.Context) (map[string]int64, error) {
	info, err := s.rdb.Info(ctx, "commandstats", "cpu").Result()
	if err != nil {
		return nil, fmt.Errorf("redis INFO: %w", err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			if secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				out[redisCPU] += int64(secs * 1e6)
			}
			continue
		}
		name, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out, nil
}

type pgCounters struct{ xacts, written int64 }

type pgRate struct{ xacts, written float64 }

func (s *storeCounter) pgStats(ctx context.Context) (pgCounters, error) {
	var c pgCounters
	if s.dbName == "" {
		return c, nil
	}
	conn, err := pgx.Connect(ctx, s.pgURL)
	if err != nil {
		return c, err
	}
	defer conn.Close(ctx)
	// From another database (s.pgURL), so this query is not one of the count.
	// Rows read are left out: tup_returned counts every row a scan walks, and the
	// relay's and the jobs' polls walk thousands a second.
	err = conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback,
		tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = $1`, s.dbName).
		Scan(&c.xacts, &c.written)
	return c, err
}

// rss is a field of /proc/pid/status (VmRSS: now, VmHWM: the peak) in bytes; 0 when
// unknown.
func rss(pid int, field string) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
