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

	"github.com/talentforge/auth/pkg/config"
)

const benchPassword = "correct horse battery staple"

// hashQueueTimeout is how long the service's hasher queues a request (the baseline
// hasher uses the same).
func hashQueueTimeout(cfg *config.Config) time.Duration { return cfg.PasswordHashQueueTimeout }

type bench struct {
	url     string
	dur     time.Duration
	levels  []int
	maxConc int
	client  *http.Client
	seq     atomic.Int64
}

// cell is one route at one concurrency.
type cell struct {
	name          string
	conc          int
	ok, errs, bsy int // 2xx, other answers or transport errors, of which 503
	rps           float64
	p50, p90, p99 time.Duration
	base          *cell
	minRatio      float64 // target: rps >= minRatio * base.rps
	maxP99Ratio   float64 // target: p99 <= maxP99Ratio * base.p99 (0: none)
	maxP99        time.Duration
}

// do sends one request of worker w and reports whether it succeeded.
type do func(ctx context.Context, w int) (status int, err error)

func (b *bench) run(ctx context.Context, base *baselines, rows []string) error {
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
	fmt.Printf("# setup: users in %s\n", time.Since(setup).Round(time.Millisecond))

	var table []*cell
	type spec struct {
		name                 string
		minRatio, maxP99Rate float64
		maxP99               time.Duration
		d                    do
	}
	// group runs, at each level in turn, the baselines then the rows, so both meet the
	// same machine (other load comes and goes); the first baseline is the rows' one.
	group := func(bases, rows []spec) {
		cells := map[string][]*cell{}
		for _, c := range b.levels {
			var base *cell
			for i, s := range append(slices.Clone(bases), rows...) {
				r := b.load(ctx, s.name, c, s.d)
				if i == 0 {
					base = r
				} else if i >= len(bases) {
					r.base, r.minRatio, r.maxP99Ratio, r.maxP99 = base, s.minRatio, s.maxP99Rate, s.maxP99
				}
				cells[s.name] = append(cells[s.name], r)
				fmt.Fprintf(progress, "  %-28s c=%-3d %8.0f req/s p99 %s\n", s.name, c, r.rps, r.p99)
			}
		}
		for _, s := range append(slices.Clone(bases), rows...) {
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
			rs = append(rs, spec{"GET /v1/auth/verify?role=", 0.8, 1.5, 0, get(b.url+"/v1/auth/verify?role=user", access)})
		}
		if want("me") {
			rs = append(rs, spec{"GET /v1/users/me", 0.7, 2, 0, get(b.url+"/v1/users/me", access)})
		}
		group([]spec{
			{name: "base: verify (cached sig)", d: get(base.verifyCached+"/verify", base.access)},
			{name: "base: verify (sig+GET)", d: get(base.verifySig+"/verify", base.access)},
		}, rs)
	}
	if want("refresh") {
		bt, err := base.newRefreshTokens(ctx, b.maxConc)
		if err != nil {
			return err
		}
		st, err := b.refreshTokens(ctx, b.maxConc)
		if err != nil {
			return err
		}
		group([]spec{{name: "base: refresh (script+sign)", d: b.refreshDo(base.refresh+"/refresh", bt)}},
			[]spec{{"POST /v1/auth/refresh", 0.7, 2, 0, b.refreshDo(b.url+"/v1/auth/refresh", st)}})
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
			}})
		}
		if want("register") {
			rs = append(rs, spec{"POST /v1/auth/register", 0.9, 0, 2 * time.Second, func(ctx context.Context, _ int) (int, error) {
				body, _ := json.Marshal(map[string]string{"email": b.email("reg"), "password": benchPassword, "name": "Bench"})
				return b.send(ctx, http.MethodPost, b.url+"/v1/auth/register", "", body, nil)
			}})
		}
		group([]spec{{name: "base: password hash", d: func(ctx context.Context, _ int) (int, error) {
			return b.send(ctx, http.MethodPost, base.hash+"/hash", "", nil, nil)
		}}}, rs)
	}
	printTable(table)
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

// load runs conc workers calling d for b.dur and measures every request.
func (b *bench) load(ctx context.Context, name string, conc int, d do) *cell {
	// Warm up the connections and caches without measuring.
	for w := range conc {
		_, _ = d(ctx, w)
	}
	lat := make([][]time.Duration, conc)
	var ok, errs, busy atomic.Int64
	deadline := time.Now().Add(b.dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
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
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	return &cell{name: name, conc: conc, ok: int(ok.Load()), errs: int(errs.Load()), bsy: int(busy.Load()),
		rps: float64(ok.Load()) / elapsed.Seconds(), p50: q(0.50), p90: q(0.90), p99: q(0.99)}
}

func printTable(table []*cell) {
	fmt.Println()
	fmt.Println("| route | conc | ok req/s | p50 | p90 | p99 | errors (503) | ratio req/s | ratio p99 | target |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, c := range table {
		ratio, p99r, verdict := "", "", ""
		if c.base != nil && c.base.rps > 0 {
			rr := c.rps / c.base.rps
			ratio = fmt.Sprintf("%.2f", rr)
			var fails []string
			if rr < c.minRatio {
				fails = append(fails, fmt.Sprintf("req/s<%.0f%%", 100*c.minRatio))
			}
			if c.base.p99 > 0 {
				pr := float64(c.p99) / float64(c.base.p99)
				p99r = fmt.Sprintf("%.2f", pr)
				if c.maxP99Ratio > 0 && pr > c.maxP99Ratio {
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
		fmt.Printf("| %s | %d | %.0f | %s | %s | %s | %d (%d) | %s | %s | %s |\n", c.name, c.conc, c.rps,
			ms(c.p50), ms(c.p90), ms(c.p99), c.errs, c.bsy, ratio, p99r, verdict)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
