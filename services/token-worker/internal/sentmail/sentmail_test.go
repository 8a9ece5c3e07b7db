package sentmail_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
	"github.com/talentforge/auth/services/token-worker/internal/sentmail"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	workertest.DropDatabase()
	os.Exit(code)
}

func ledger(t *testing.T, lease time.Duration) *sentmail.Ledger {
	t.Helper()
	db, err := postgres.Open(workertest.Database(t), nil, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return sentmail.New(db, lease)
}

func TestClaimLifecycle(t *testing.T) {
	l := ledger(t, time.Hour)
	ctx := context.Background()
	rcpt := "Lee-" + workertest.RandomHex(4) + "@Example.com"
	id := uuid.NewString()
	a1, a2 := uuid.NewString(), uuid.NewString()
	claim := func(attempt string) sentmail.Result {
		t.Helper()
		r, err := l.Claim(ctx, sentmail.Claim{EventID: id, Kind: "verification", Recipient: rcpt, Attempt: attempt, Cap: 10})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := claim(a1); r != sentmail.Claimed {
		t.Fatalf("first claim = %s", r)
	}
	if r := claim(a2); r != sentmail.Busy {
		t.Fatalf("a second attempt while the first holds the email = %s, want busy", r)
	}
	if r := claim(a1); r != sentmail.Claimed {
		t.Fatalf("the holder claiming again = %s, want claimed", r)
	}
	if err := l.Release(ctx, id, a1); err != nil {
		t.Fatal(err)
	}
	if r := claim(a2); r != sentmail.Claimed {
		t.Fatalf("a new attempt after a release = %s, want claimed", r)
	}
	if err := l.MarkSent(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := claim(uuid.NewString()); r != sentmail.Done {
		t.Fatalf("a redelivery after sent = %s, want done", r)
	}
	if _, err := l.Claim(ctx, sentmail.Claim{EventID: "nope", Recipient: rcpt, Attempt: a1}); !errors.Is(err, retry.ErrPermanent) {
		t.Fatalf("claim of a bad event id = %v, want permanent", err)
	}
}

func TestLeaseExpires(t *testing.T) {
	l := ledger(t, 200*time.Millisecond)
	ctx := context.Background()
	c := sentmail.Claim{EventID: uuid.NewString(), Kind: "verification", Recipient: "crash-" + workertest.RandomHex(4) + "@example.com", Attempt: uuid.NewString()}
	if r, err := l.Claim(ctx, c); err != nil || r != sentmail.Claimed {
		t.Fatal(r, err)
	}
	// The holder died mid-send: once the lease is over the next delivery takes over.
	time.Sleep(300 * time.Millisecond)
	c.Attempt = uuid.NewString()
	if r, err := l.Claim(ctx, c); err != nil || r != sentmail.Claimed {
		t.Fatalf("claim after the lease = %s, %v; want claimed", r, err)
	}
}

func TestCapUnderConcurrency(t *testing.T) {
	l := ledger(t, time.Hour)
	rcpt := "cap-" + workertest.RandomHex(4) + "@example.com"
	const n, limit = 12, 3
	results := make([]sentmail.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			results[i], err = l.Claim(context.Background(), sentmail.Claim{EventID: uuid.NewString(), Kind: "register_existing",
				Recipient: rcpt, Attempt: uuid.NewString(), Cap: limit})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	count := map[sentmail.Result]int{}
	for _, r := range results {
		count[r]++
	}
	if count[sentmail.Claimed] != limit || count[sentmail.Capped] != n-limit {
		t.Fatalf("results %v, want %d claimed and %d capped", count, limit, n-limit)
	}
	// Another address has its own budget; the normalised form is counted.
	if r, _ := l.Claim(context.Background(), sentmail.Claim{EventID: uuid.NewString(), Recipient: "  " + rcpt[:4] + "X" + rcpt[4:], Attempt: uuid.NewString(), Cap: limit}); r != sentmail.Claimed {
		t.Fatalf("another address = %s", r)
	}
	if r, _ := l.Claim(context.Background(), sentmail.Claim{EventID: uuid.NewString(), Recipient: " " + rcpt + " ", Attempt: uuid.NewString(), Cap: limit}); r != sentmail.Capped {
		t.Fatalf("the same address with other spacing = %s, want capped", r)
	}
}
