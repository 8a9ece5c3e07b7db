package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/services/token-worker/internal/audit"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	workertest.DropDatabase()
	os.Exit(code)
}

func openDB(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(workertest.Database(t), nil, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestPartitions(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	store := audit.NewStore(db)
	// Far in the future, a year of this run's own, so no other partition is in the way.
	// An entry of a month without a partition lands in DEFAULT...
	year := 2100 + rand.IntN(7000)
	name := func(month int) string { return fmt.Sprintf("audit_log_y%04dm%02d", year, month) }
	user := uuid.New()
	early := audit.Entry{ID: uuid.New(), Type: "auth.user.registered", OccurredAt: time.Date(year, 5, 20, 8, 0, 0, 0, time.UTC),
		UserID: uuid.NullUUID{UUID: user, Valid: true}, Payload: json.RawMessage(`{}`)}
	if err := store.Insert(ctx, early); err != nil {
		t.Fatal(err)
	}
	if got := partitionOf(t, db, early.ID); got != "audit_log_default" {
		t.Fatalf("entry before its partition exists is in %s, want audit_log_default", got)
	}

	// ...and moves into the month's partition when it is made.
	clock := func() time.Time { return time.Date(year, 4, 30, 23, 59, 0, 0, time.FixedZone("x", -2*3600)) } // May 1st UTC
	p := audit.NewPartitions(db, audit.WithClock(clock))
	var wg sync.WaitGroup
	results := make([][]string, 3)
	errs := make([]error, 3)
	for i := range 3 { // several workers at once
		wg.Go(func() { results[i], errs[i] = p.Ensure(ctx) })
	}
	wg.Wait()
	var created []string
	for i := range 3 {
		if errs[i] != nil {
			t.Fatalf("Ensure: %v", errs[i])
		}
		created = append(created, results[i]...)
	}
	slices.Sort(created)
	if want := []string{name(5), name(6), name(7)}; !slices.Equal(created, want) {
		t.Fatalf("created %v, want %v (each once)", created, want)
	}
	if got := partitionOf(t, db, early.ID); got != name(5) {
		t.Fatalf("the early entry is in %s, want %s", got, name(5))
	}
	again, err := p.Ensure(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Ensure = %v, %v; want nothing new", again, err)
	}

	late := early
	late.ID, late.OccurredAt = uuid.New(), time.Date(year, 7, 31, 23, 59, 59, 0, time.UTC)
	edge := early
	edge.ID, edge.OccurredAt = uuid.New(), time.Date(year, 8, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range []audit.Entry{late, edge, early} { // early again: a redelivery
		if err := store.Insert(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if got := partitionOf(t, db, late.ID); got != name(7) {
		t.Errorf("July 31st 23:59:59 is in %s", got)
	}
	if got := partitionOf(t, db, edge.ID); got != "audit_log_default" {
		t.Errorf("August 1st is in %s, want the default partition", got)
	}
	entries, err := store.ForUser(ctx, user.String(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].ID != edge.ID || entries[1].ID != late.ID || entries[2].ID != early.ID {
		t.Fatalf("entries newest first = %v", entries)
	}

	// The user index serves the query on every partition.
	var indexed int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename IN (?, ?, ?)
		AND indexdef LIKE '%(user_id, occurred_at DESC)%'`, name(5), name(6), name(7)).Scan(&indexed); err != nil {
		t.Fatal(err)
	}
	if indexed != 3 {
		t.Errorf("%d of 3 partitions have the (user_id, occurred_at DESC) index", indexed)
	}
}

func partitionOf(t *testing.T, db *postgres.DB, id uuid.UUID) string {
	t.Helper()
	var name string
	if err := db.QueryRowContext(context.Background(), "SELECT tableoid::regclass::text FROM audit_log WHERE id = ?", id).Scan(&name); err != nil {
		t.Fatalf("find %s: %v", id, err)
	}
	return name
}

func TestScrub(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"user_id":"u","token":"raw","token_sealed":{"kid":"k"},"expires_at":"x"}`, `{"expires_at":"x","user_id":"u"}`},
		{`{"password":"p","new_password":"q","password_hash":"h","client_secret":"s","ip":"1.2.3.4"}`, `{"ip":"1.2.3.4"}`},
		{`{"code":"123456","recovery_codes":["a"],"reason":"invalid_credentials"}`, `{"reason":"invalid_credentials"}`},
		{`{"nested":{"refresh_token":"r","keep":1},"list":[{"access_token":"a","n":2}]}`, `{"list":[{"n":2}],"nested":{"keep":1}}`},
		{`null`, `{}`},
		{``, `{}`},
	}
	for _, tt := range tests {
		got, err := audit.Scrub(json.RawMessage(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("Scrub(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := audit.Scrub(json.RawMessage(`{"a":`)); err == nil {
		t.Error("Scrub accepted broken JSON")
	}
}

type memStore struct{ got []audit.Entry }

func (m *memStore) Insert(_ context.Context, e audit.Entry) error {
	m.got = append(m.got, e)
	return nil
}

func TestRecorderTakesUserFromPayload(t *testing.T) {
	store := &memStore{}
	r := audit.NewRecorder(store)
	user := uuid.NewString()
	ev := events.Envelope{ID: uuid.NewString(), Type: "auth.user.login_failed", OccurredAt: time.Now(),
		ActorID: "not-a-uuid", Payload: json.RawMessage(`{"user_id":"` + user + `","password":"oops"}`)}
	if _, err := r.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	e := store.got[0]
	if e.UserID.UUID.String() != user || e.ActorID.Valid || string(e.Payload) != `{"user_id":"`+user+`"}` {
		t.Fatalf("entry = %+v payload %s", e, e.Payload)
	}
}

// Entries of a month keep arriving (the audit consumer never pauses) while its partition
// is made: the move from DEFAULT and the attach must not race them. Before, a row inserted
// between the move and the attach failed the attach, every minute, for as long as
// entries kept coming.
func TestPartitionIsMadeWhileEntriesArrive(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	store := audit.NewStore(db)
	year := 2100 + rand.IntN(7000)
	clock := func() time.Time { return time.Date(year, 3, 10, 12, 0, 0, 0, time.UTC) }
	stop := make(chan struct{})
	var (
		mu       sync.Mutex
		inserted []uuid.UUID
		wg       sync.WaitGroup
	)
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e := audit.Entry{ID: uuid.New(), Type: "auth.user.registered", Payload: json.RawMessage(`{}`),
					OccurredAt: time.Date(year, 3, 1+i%28, w, 0, 0, 0, time.UTC)}
				// As the consumer does: an entry that failed is redelivered.
				for store.Insert(ctx, e) != nil {
				}
				mu.Lock()
				inserted = append(inserted, e.ID)
				mu.Unlock()
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // DEFAULT holds some first
	created, err := audit.NewPartitions(db, audit.WithClock(clock)).Ensure(ctx)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Ensure while entries arrive: %v", err)
	}
	want := fmt.Sprintf("audit_log_y%04dm03", year)
	if !slices.Contains(created, want) {
		t.Fatalf("created %v, want %s", created, want)
	}
	for _, id := range inserted {
		if got := partitionOf(t, db, id); got != want {
			t.Fatalf("entry %s is in %s, want %s", id, got, want)
		}
	}
	t.Logf("%d entries arrived during the run", len(inserted))
}
