package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const benchPassword = "correct horse battery staple"

type bench struct {
	url     string
	pid     int           // the service's process (0: unknown)
	stores  *storeCounter // counts each row's Redis and PostgreSQL operations (nil: not counted)
	dur     time.Duration
	rounds  int
	levels  []int
	maxConc int
	client  *http.Client
	seq     atomic.Int64
}

// cell is one route at one concurrency, measured in rounds.
type cell struct {
	name          string
	conc          int
	rounds        []*round
	ok, errs, bsy int           // 2xx, other answers or transport errors, of which 503 (all rounds)
	rps           float64       // median of the rounds
	cpu           time.Duration // median of the rounds
	pid           int           // the serving process (0: unknown)
	p50, p90, p99 time.Duration
	lat           []time.Duration // every latency of every round, sorted once measured
	base          *cell
	minRatio      float64 // target: median ratio >= minRatio
	maxP99Ratio   float64 // target: median p99 ratio <= maxP99Ratio (0: none)
	maxP99        time.Duration
}

// round is one stretch of b.dur of a cell.
type round struct {
	rps float64
	p99 time.Duration
	cpu time.Duration // CPU time the serving process spent per 2xx answer (0: unknown)
}

// ratios are the per-round ratios of c to its baseline, round i against round i.
func (c *cell) ratios() (rps, p99 []float64) {
	for i, r := range c.rounds {
		br := c.base.rounds[i]
		if br.rps > 0 {
			rps = append(rps, r.rps/br.rps)
		}
		if br.p99 > 0 {
			p99 = append(p99, float64(r.p99)/float64(br.p99))
		}
	}
	return rps, p99
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spec is a row or a baseline of the table.
type spec struct {
	name                 string
	minRatio, maxP99Rate float64
	maxP99               time.Duration
	d                    do
	pid                  int // the serving process, for its CPU time
}

// do sends one request of worker w and reports whether it succeeded.
type do func(ctx context.Context, w int) (status int, err error)

func (b *bench) run(ctx context.Context, base *baselineSet, rows []string) error {
	b.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2 * b.maxConc, MaxIdleConnsPerHost: 2 * b.maxConc, MaxConnsPerHost: 0,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}}
	defer b.client.CloseIdleConnections()

	setup := time.Now()
	userEmail := b.email("verify")
	if err := b.register(ctx, userEmail); err != nil {
		return err
	}
	pair, err := b.login(ctx, userEmail)
	if err != nil {
		return err
	}
	access := pair.AccessToken
	fmt.Fprintf(out, "# setup: users in %s\n", time.Since(setup).Round(time.Millisecond))

	rest := rss(b.pid, "VmRSS")
	var table []*cell
	var rowSpecs []spec // the service's rows, for the count of store operations
	// group runs, at each level in turn, rounds of the baselines then the rows, so both
	// meet the same machine (other load comes and goes); the first baseline is the
	// rows' one, and a row's round is compared with that baseline's round before it.
	group := func(bases, rows []spec) {
		cells := map[string][]*cell{}
		rowSpecs = append(rowSpecs, rows...)
		all := append(slices.Clone(bases), rows...)
		for _, c := range b.levels {
			level := make([]*cell, len(all))
			for i, s := range all {
				level[i] = &cell{name: s.name, conc: c, pid: s.pid}
				if i >= len(bases) {
					level[i].base, level[i].minRatio, level[i].maxP99Ratio, level[i].maxP99 = level[0], s.minRatio, s.maxP99Rate, s.maxP99
				}
				b.warm(ctx, c, s.d)
			}
			for r := range b.rounds {
				for i, s := range all {
					rd := b.load(ctx, level[i], s.d)
					fmt.Fprintf(progress, "  %-28s c=%-3d round %d: %8.0f req/s p99 %s\n", s.name, c, r+1, rd.rps, rd.p99)
				}
			}
			for i, s := range all {
				level[i].finish()
				cells[s.name] = append(cells[s.name], level[i])
			}
		}
		for _, s := range all {
			table = append(table, cells[s.name]...)
		}
	}
	get := func(url, bearer string) do {
		return func(ctx context.Context, _ int) (int, error) {
			return b.send(ctx, http.MethodGet, url, bearer, nil, nil)
		}
	}
	want := func(row string) bool { return slices.Contains(rows, row) }

	if want("verify") || want("me") {
		var rs []spec
		if want("verify") {
			rs = append(rs, spec{"GET /v1/auth/verify?role=", 0.8, 1.5, 0, get(b.url+"/v1/auth/verify?role=user", access), b.pid})
		}
		if want("me") {
			rs = append(rs, spec{"GET /v1/users/me", 0.7, 2, 0, get(b.url+"/v1/users/me", access), b.pid})
		}
		group([]spec{
			{name: "base: verify (cached sig)", d: get(base.verifyCached.URL+"/verify", base.verifyCached.Access), pid: base.verifyCached.PID},
			{name: "base: verify (sig+GET)", d: get(base.verifySig.URL+"/verify", base.verifySig.Access), pid: base.verifySig.PID},
		}, rs)
	}
	if want("refresh") {
		bt := base.refresh.Tokens
		st, err := b.refreshTokens(ctx, b.maxConc)
		if err != nil {
			return err
		}
		group([]spec{{name: "base: refresh (script+sign)", d: b.refreshDo(base.refresh.URL+"/refresh", bt), pid: base.refresh.PID}},
			[]spec{{"POST /v1/auth/refresh", 0.7, 2, 0, b.refreshDo(b.url+"/v1/auth/refresh", st), b.pid}})
	}
	if want("login") || want("register") {
		var rs []spec
		if want("login") {
			email := b.email("login")
			if err := b.register(ctx, email); err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"email": email, "password": benchPassword})
			rs = append(rs, spec{"POST /v1/auth/login", 0.9, 0, 1500 * time.Millisecond, func(ctx context.Context, _ int) (int, error) {
				return b.send(ctx, http.MethodPost, b.url+"/v1/auth/login", "", body, nil)
			}, b.pid})
		}
		if want("register") {
			rs = append(rs, spec{"POST /v1/auth/register", 0.9, 0, 2 * time.Second, func(ctx context.Context, _ int) (int, error) {
				body, _ := json.Marshal(map[string]string{"email": b.email("reg"), "password": benchPassword, "name": "Bench"})
				return b.send(ctx, http.MethodPost, b.url+"/v1/auth/register", "", body, nil)
			}, b.pid})
		}
		group([]spec{{name: "base: password hash", d: func(ctx context.Context, _ int) (int, error) {
			return b.send(ctx, http.MethodPost, base.hash.URL+"/hash", "", nil, nil)
		}, pid: base.hash.PID}}, rs)
	}
	printTable(table)
	if b.pid > 0 {
		fmt.Fprintf(out, "\n# service memory (RSS): %.0f MiB at rest after setup, %.0f MiB peak under the load above\n",
			float64(rest)/(1<<20), float64(rss(b.pid, "VmHWM"))/(1<<20))
	}
	if b.stores != nil {
		return b.stores.count(ctx, rowSpecs)
	}
	return nil
}

// refreshDo rotates token w of tokens on each call (each worker owns one session).
func (b *bench) refreshDo(url string, tokens []string) do {
	return func(ctx context.Context, w int) (int, error) {
		body, _ := json.Marshal(map[string]string{"refresh_token": tokens[w]})
		var out struct {
			RefreshToken string `json:"refresh_token"`
		}
		st, err := b.send(ctx, http.MethodPost, url, "", body, &out)
		if st == http.StatusOK && out.RefreshToken != "" {
			tokens[w] = out.RefreshToken
		}
		return st, err
	}
}

// refreshTokens logs in n times, spread over users so none hits its session cap.
func (b *bench) refreshTokens(ctx context.Context, n int) ([]string, error) {
	out := make([]string, n)
	const perUser = 50
	var emails []string
	for i := 0; i*perUser < n; i++ {
		e := b.email("refresh")
		if err := b.register(ctx, e); err != nil {
			return nil, err
		}
		emails = append(emails, e)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 4)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := b.login(ctx, emails[i/perUser])
			if err != nil {
				errs <- err
				return
			}
			out[i] = p.RefreshToken
		}()
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}

func (b *bench) email(prefix string) string {
	return fmt.Sprintf("bench-%s-%d-%d@example.com", prefix, time.Now().UnixNano(), b.seq.Add(1))
}

type pair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (b *bench) register(ctx context.Context, email string) error {
	body, _ := json.Marshal(map[string]string{"email": email, "password": benchPassword, "name": "Bench"})
	st, err := b.send(ctx, http.MethodPost, b.url+"/v1/auth/register", "", body, nil)
	if err != nil || (st != http.StatusCreated && st != http.StatusAccepted) {
		return fmt.Errorf("register %s: %d %v (the service must run with EMAIL_VERIFICATION_REQUIRED=false, RATE_LIMIT_ENABLED=false)", email, st, err)
	}
	return nil
}

func (b *bench) login(ctx context.Context, email string) (pair, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": benchPassword})
	var p pair
	for try := 0; ; try++ {
		st, err := b.send(ctx, http.MethodPost, b.url+"/v1/auth/login", "", body, &p)
		if err == nil && st == http.StatusOK && p.AccessToken != "" {
			return p, nil
		}
		if try == 5 || (st != http.StatusServiceUnavailable && st != http.StatusTooManyRequests) {
			return p, fmt.Errorf("login %s: %d %v", email, st, err)
		}
		time.Sleep(time.Second)
	}
}

// send performs one request; out, when not nil, receives a 2xx JSON body.
func (b *bench) send(ctx context.Context, method, url, bearer string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if out != nil && res.StatusCode/100 == 2 {
		err = json.NewDecoder(res.Body).Decode(out)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, err
}

// warm opens the connections and fills the caches of a cell without measuring.
func (b *bench) warm(ctx context.Context, conc int, d do) {
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = d(ctx, w) }()
	}
	wg.Wait()
}

// load runs one round of c: c.conc workers calling d for b.dur, every request measured.
func (b *bench) load(ctx context.Context, c *cell, d do) round {
	lat := make([][]time.Duration, c.conc)
	var ok, errs, busy atomic.Int64
	cpu0 := cpuTime(c.pid)
	deadline := time.Now().Add(b.dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				st, err := d(ctx, w)
				l = append(l, time.Since(t0))
				switch {
				case err == nil && st/100 == 2:
					ok.Add(1)
				case st == http.StatusServiceUnavailable:
					busy.Add(1)
					errs.Add(1)
				default:
					errs.Add(1)
				}
			}
			lat[w] = l
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := round{rps: float64(ok.Load()) / elapsed.Seconds(), p99: quantile(all, 0.99)}
	if cpu1 := cpuTime(c.pid); cpu1 > 0 && ok.Load() > 0 {
		r.cpu = (cpu1 - cpu0) / time.Duration(ok.Load())
	}
	c.rounds = append(c.rounds, &r)
	c.lat = append(c.lat, all...)
	c.ok, c.errs, c.bsy = c.ok+int(ok.Load()), c.errs+int(errs.Load()), c.bsy+int(busy.Load())
	return r
}

// finish sums up the rounds of c.
func (c *cell) finish() {
	slices.Sort(c.lat)
	c.p50, c.p90, c.p99 = quantile(c.lat, 0.50), quantile(c.lat, 0.90), quantile(c.lat, 0.99)
	c.lat = nil
	rps, cpu := make([]float64, len(c.rounds)), make([]float64, len(c.rounds))
	for i, r := range c.rounds {
		rps[i], cpu[i] = r.rps, float64(r.cpu)
	}
	c.rps, c.cpu = median(rps), time.Duration(median(cpu))
}

func quantile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func printTable(table []*cell) {
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| route | conc | ok req/s (median) | p50 | p90 | p99 | errors (503) | CPU µs/req | ratio req/s: median (range) | ratio p99: median (range) | target |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, c := range table {
		ratio, p99r, verdict := "", "", ""
		if c.base != nil {
			rr, pr := c.ratios()
			var fails []string
			if len(rr) > 0 {
				m := median(rr)
				ratio = fmt.Sprintf("%.2f (%.2f-%.2f)", m, slices.Min(rr), slices.Max(rr))
				if m < c.minRatio {
					fails = append(fails, fmt.Sprintf("req/s<%.0f%%", 100*c.minRatio))
				}
			}
			if len(pr) > 0 {
				m := median(pr)
				p99r = fmt.Sprintf("%.2f (%.2f-%.2f)", m, slices.Min(pr), slices.Max(pr))
				if c.maxP99Ratio > 0 && m > c.maxP99Ratio {
					fails = append(fails, fmt.Sprintf("p99>%.1fx", c.maxP99Ratio))
				}
			}
			if c.maxP99 > 0 && c.p99 > c.maxP99 {
				fails = append(fails, fmt.Sprintf("p99>%s", c.maxP99))
			}
			verdict = "met"
			if len(fails) > 0 {
				verdict = "NOT met: " + strings.Join(fails, ", ")
			}
		}
		cpu := ""
		if c.cpu > 0 {
			cpu = fmt.Sprintf("%.0f", float64(c.cpu.Nanoseconds())/1000)
		}
		fmt.Fprintf(out, "| %s | %d | %.0f | %s | %s | %s | %d (%d) | %s | %s | %s | %s |\n", c.name, c.conc, c.rps,
			ms(c.p50), ms(c.p90), ms(c.p99), c.errs, c.bsy, cpu, ratio, p99r, verdict)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
