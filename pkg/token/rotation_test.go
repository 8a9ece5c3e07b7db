package token

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func TestSigningKeySelection(t *testing.T) {
	type key struct {
		kid string
		age time.Duration // how long before t0 the file appeared
	}
	tests := []struct {
		name  string
		keys  []key
		delay time.Duration
		want  string
	}{
		{"first start: only a brand-new key", []key{{"new", 0}}, 10 * time.Minute, "new"},
		{"new key not yet published long enough", []key{{"old", 48 * time.Hour}, {"new", 5 * time.Minute}}, 10 * time.Minute, "old"},
		{"new key exactly publishDelay old", []key{{"old", 48 * time.Hour}, {"new", 10 * time.Minute}}, 10 * time.Minute, "new"},
		{"newest eligible of three", []key{{"a", 3 * time.Hour}, {"b", 2 * time.Hour}, {"c", time.Minute}}, time.Hour, "b"},
		{"all new: the oldest signs, the newer waits", []key{{"a", 2 * time.Minute}, {"b", time.Minute}}, 10 * time.Minute, "a"},
		{"mtime tie broken by kid", []key{{"k2", time.Hour}, {"k1", time.Hour}}, 10 * time.Minute, "k2"},
		{"zero delay: newest signs", []key{{"old", time.Hour}, {"new", 0}}, 0, "new"},
		{"file from the future is not eligible", []key{{"old", time.Hour}, {"future", -time.Hour}}, 10 * time.Minute, "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, k := range tt.keys {
				writeKey(t, dir, k.kid+".pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), t0.Add(-k.age))
			}
			ks, err := LoadKeySet(dir, WithClock(func() time.Time { return t0 }), WithPublishDelay(tt.delay))
			if err != nil {
				t.Fatal(err)
			}
			if kid, _ := ks.Signing(); kid != tt.want {
				t.Errorf("signing kid %q, want %q", kid, tt.want)
			}
		})
	}
}

// In a Kubernetes secret volume every file is rewritten at each update, so all keys
// share one fresh mtime: the time in a generated kid decides, and the key just added
// still waits out the publish delay.
func TestSigningKeyTimeComesFromTheKidWhenItHasOne(t *testing.T) {
	dir := t.TempDir()
	old := t0.Add(-48*time.Hour).UTC().Format("20060102T150405Z") + "-aaaaaaaa"
	added := t0.Add(-time.Minute).UTC().Format("20060102T150405Z") + "-bbbbbbbb"
	for _, kid := range []string{old, added} {
		writeKey(t, dir, kid+".pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), t0) // same mtime: the resync
	}
	ks, err := LoadKeySet(dir, WithClock(func() time.Time { return t0 }), WithPublishDelay(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := ks.Signing(); kid != old {
		t.Fatalf("signing kid %q, want the published %q", kid, old)
	}
	ks, err = LoadKeySet(dir, WithClock(func() time.Time { return t0.Add(5 * time.Minute) }), WithPublishDelay(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := ks.Signing(); kid != added {
		t.Fatalf("after the delay: signing kid %q, want %q", kid, added)
	}
}

func TestRotation(t *testing.T) {
	const delay = 10 * time.Minute
	dir := t.TempDir()
	clock := newTestClock(t0)

	oldKid, err := GenerateKey(dir, AlgEdDSA, t0.Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	oldPath := filepath.Join(dir, oldKid+".pem")
	if err := os.Chtimes(oldPath, t0.Add(-48*time.Hour), t0.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	newKid, err := GenerateKey(dir, AlgES256, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, newKid+".pem"), t0, t0); err != nil {
		t.Fatal(err)
	}

	ks, err := LoadKeySet(dir, WithClock(clock.Now), WithPublishDelay(delay))
	if err != nil {
		t.Fatal(err)
	}
	iss := NewIssuer(ks, "https://auth.test", "api", 15*time.Minute, WithClock(clock.Now))
	ver := NewVerifier(ks, "https://auth.test", "api", WithClock(clock.Now))

	// Both keys are published from the start.
	jwks, _ := ks.JWKS()
	for _, kid := range []string{oldKid, newKid} {
		if !strings.Contains(string(jwks), `"kid":"`+kid+`"`) {
			t.Fatalf("JWKS lacks %s: %s", kid, jwks)
		}
	}

	issue := func(wantKid string) string {
		t.Helper()
		raw, _, err := iss.Issue("user-1", "sess-1", time.Time{}, nil, []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		if kid := headerOf(t, raw)["kid"]; kid != wantKid {
			t.Fatalf("token signed by %v, want %s", kid, wantKid)
		}
		return raw
	}
	verifies := func(raw string, want bool) {
		t.Helper()
		_, err := ver.Verify(raw)
		if (err == nil) != want {
			t.Fatalf("Verify err = %v, want ok=%v", err, want)
		}
	}

	// The new key is unknown to caches: the old one signs until the new key has
	// been published for the delay plus one reload interval (other replicas).
	oldTok := issue(oldKid)
	clock.Set(t0.Add(delay + defaultReload - time.Second))
	issue(oldKid)

	clock.Set(t0.Add(delay + defaultReload))
	newTok := issue(newKid)
	verifies(oldTok, true) // outstanding tokens survive the switch
	verifies(newTok, true)

	if err := os.Remove(oldPath); err != nil {
		t.Fatal(err)
	}
	verifies(oldTok, true) // nothing changes until a reload
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	verifies(oldTok, false)
	verifies(newTok, true)
	if jwks, _ := ks.JWKS(); strings.Contains(string(jwks), oldKid) {
		t.Fatalf("deleted key still published: %s", jwks)
	}
}

func TestReloadKeepsOldSetOnError(t *testing.T) {
	dir := t.TempDir()
	path := writeKey(t, dir, "only.pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), t0)
	clock := newTestClock(t0)
	ks, err := LoadKeySet(dir, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	iss := NewIssuer(ks, "iss", "aud", time.Minute, WithClock(clock.Now))
	ver := NewVerifier(ks, "iss", "aud", WithClock(clock.Now))
	raw, _, err := iss.Issue("u", "s", time.Time{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name   string
		mutate func(t *testing.T)
		errHas string
	}{
		{"broken key added", func(t *testing.T) { writeKey(t, dir, "broken.pem", []byte("garbage"), t0) }, "broken.pem"},
		{"all keys gone", func(t *testing.T) {
			for _, p := range []string{path, filepath.Join(dir, "broken.pem")} {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}, dir},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.mutate(t)
			err := ks.Reload()
			if err == nil || !strings.Contains(err.Error(), st.errHas) {
				t.Fatalf("Reload err = %v, want error naming %s", err, st.errHas)
			}
			if kid, _ := ks.Signing(); kid != "only" {
				t.Errorf("signing kid %q after failed reload, want only", kid)
			}
			if _, err := ver.Verify(raw); err != nil {
				t.Errorf("old key stopped verifying after failed reload: %v", err)
			}
		})
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	writeKey(t, dir, "first.pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), t0)
	errs := make(chan error, 1)
	ks, err := LoadKeySet(dir, WithReloadErrorHandler(func(err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ks.Watch(ctx, 5*time.Millisecond)
	}()

	kid, err := GenerateKey(dir, AlgEdDSA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new key published", func() bool {
		jwks, _ := ks.JWKS()
		return strings.Contains(string(jwks), kid)
	})

	writeKey(t, dir, "broken.pem", []byte("garbage"), time.Now())
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "broken.pem") {
			t.Errorf("reload error %q does not name the file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reload error never reported")
	}

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after ctx was cancelled")
	}
}

// TestConcurrentUse lets the race detector watch Issue/Verify/JWKS run
// against reloads.
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	if _, err := GenerateKey(dir, AlgEdDSA, time.Now()); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss := NewIssuer(ks, "iss", "aud", time.Minute)
	ver := NewVerifier(ks, "iss", "aud")

	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for range 50 {
				raw, _, err := iss.Issue("u", "s", time.Time{}, []string{"r"}, nil)
				if err == nil {
					_, err = ver.Verify(raw)
				}
				if err == nil {
					_, err = ks.JWKS()
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := ks.Reload(); err != nil {
				errc <- err
				return
			}
		}
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A key made by "auth keys rotate" an hour ago and mounted only now: its kid (and file)
// date says it is old, but no JWKS cache has seen it yet. It is published at the reload
// that first finds it and signs only publish delay + reload interval after that reload;
// the previous key signs meanwhile.
func TestRotatedKeySignsOnlyAfterDelayFromFirstSeen(t *testing.T) {
	const delay = 5 * time.Minute
	dir := t.TempDir()
	clock := newTestClock(t0)
	oldKid, err := GenerateKey(dir, AlgEdDSA, t0.Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	chtimes(t, filepath.Join(dir, oldKid+".pem"), t0.Add(-48*time.Hour))
	ks, err := LoadKeySet(dir, WithClock(clock.Now), WithPublishDelay(delay))
	if err != nil {
		t.Fatal(err)
	}
	iss := NewIssuer(ks, "https://auth.test", "api", 15*time.Minute, WithClock(clock.Now))
	ver := NewVerifier(ks, "https://auth.test", "api", WithClock(clock.Now))
	signsWith := func(want string) {
		t.Helper()
		if kid, _ := ks.Signing(); kid != want {
			t.Fatalf("at t0+%v: signing kid %q, want %q", clock.Now().Sub(t0), kid, want)
		}
		raw, _, err := iss.Issue("user-1", "sess-1", time.Time{}, nil, []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		if kid := headerOf(t, raw)["kid"]; kid != want {
			t.Fatalf("at t0+%v: token signed by %v, want %s", clock.Now().Sub(t0), kid, want)
		}
		if _, err := ver.Verify(raw); err != nil {
			t.Fatal(err)
		}
	}
	signsWith(oldKid)

	// Generated an hour ago, copied in now (with its old file time, as cp -p or a
	// Secret built from the file would keep it).
	newKid, err := GenerateKey(dir, AlgEdDSA, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	chtimes(t, filepath.Join(dir, newKid+".pem"), t0.Add(-time.Hour))
	seen := t0.Add(30 * time.Second)
	clock.Set(seen)
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if jwks, _ := ks.JWKS(); !strings.Contains(string(jwks), `"kid":"`+newKid+`"`) {
		t.Fatalf("new key not published at the reload that found it: %s", jwks)
	}
	signsWith(oldKid)
	for _, at := range []time.Duration{time.Second, delay, delay + defaultReload - time.Second} {
		clock.Set(seen.Add(at))
		if err := ks.Reload(); err != nil { // later reloads do not restart the wait
			t.Fatal(err)
		}
		signsWith(oldKid)
	}
	clock.Set(seen.Add(delay + defaultReload))
	signsWith(newKid)
	clock.Set(seen.Add(time.Hour))
	signsWith(newKid)
}

// At start the newest key already older than the publish delay (by its kid's date)
// signs at once; a newer key waits publish delay + reload interval from the start,
// not from its kid's date.
func TestAtStartNewerKeyWaitsFromStartNotFromItsKidDate(t *testing.T) {
	const delay = 5 * time.Minute
	dir := t.TempDir()
	kidAt := func(at time.Time, suffix string) string {
		return at.UTC().Format("20060102T150405Z") + "-" + suffix
	}
	oldest := kidAt(t0.Add(-48*time.Hour), "aaaaaaaa")
	settled := kidAt(t0.Add(-time.Hour), "bbbbbbbb")
	young := kidAt(t0.Add(-time.Minute), "cccccccc")
	for _, kid := range []string{oldest, settled, young} {
		writeKey(t, dir, kid+".pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), t0) // a fresh Secret volume
	}
	clock := newTestClock(t0)
	ks, err := LoadKeySet(dir, WithClock(clock.Now), WithPublishDelay(delay))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		at   time.Duration
		want string
	}{
		{0, settled},
		{delay - time.Minute, settled}, // young's kid is now delay old: not enough
		{delay, settled},
		{delay + defaultReload - time.Second, settled},
		{delay + defaultReload, young},
	} {
		clock.Set(t0.Add(step.at))
		if kid, _ := ks.Signing(); kid != step.want {
			t.Errorf("at start+%v: signing kid %q, want %q", step.at, kid, step.want)
		}
	}
}

func chtimes(t *testing.T, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// The wait is the publish delay plus the reload interval of WithReloadInterval; a key
// removed and put back later (or a kid whose file now holds another key) waits afresh.
func TestNewKeyWaitUsesReloadIntervalAndRestartsWhenReAdded(t *testing.T) {
	const delay, every = 5 * time.Minute, 3 * time.Minute
	dir := t.TempDir()
	writeKey(t, dir, "old.pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), t0.Add(-48*time.Hour))
	clock := newTestClock(t0)
	ks, err := LoadKeySet(dir, WithClock(clock.Now), WithPublishDelay(delay), WithReloadInterval(every))
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration, reload bool, want string) {
		t.Helper()
		clock.Set(t0.Add(d))
		if reload {
			if err := ks.Reload(); err != nil {
				t.Fatal(err)
			}
		}
		if kid, _ := ks.Signing(); kid != want {
			t.Fatalf("at t0+%v: signing kid %q, want %q", d, kid, want)
		}
	}
	newPath := writeKey(t, dir, "new.pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), t0.Add(-time.Hour))
	at(0, true, "old")
	at(delay+every-time.Second, false, "old")
	at(delay+every, false, "new")

	if err := os.Remove(newPath); err != nil {
		t.Fatal(err)
	}
	at(time.Hour, true, "old")
	writeKey(t, dir, "new.pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), t0.Add(-time.Hour))
	at(2*time.Hour, true, "old")
	at(2*time.Hour+delay+every-time.Second, true, "old")
	at(2*time.Hour+delay+every, false, "new")

	// Same kid, another key: published anew, so it waits again.
	writeKey(t, dir, "new.pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), t0.Add(-time.Hour))
	at(3*time.Hour, true, "old")
	at(3*time.Hour+delay+every, false, "new")
}
