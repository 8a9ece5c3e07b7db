package usercache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/redistest"
	"github.com/talentforge/auth/pkg/usercache"
)

// TestFill: a fill lands only on an absent entry whose generation is still the one read
// before the load; every invalidation, in a transaction or after it, refuses loads
// begun before it.
func TestFill(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	s := usercache.New(rdb)
	tests := []struct {
		name string
		// between runs after the reader read the generation, before it fills.
		between func(ctx context.Context, t *testing.T, id string)
		want    bool
	}{
		{name: "nothing written", between: func(context.Context, *testing.T, string) {}, want: true},
		{name: "invalidated", want: false, between: func(ctx context.Context, t *testing.T, id string) {
			if err := s.Invalidate(ctx, id); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "invalidated, tombstone expired", want: false, between: func(ctx context.Context, t *testing.T, id string) {
			if err := s.Invalidate(ctx, id); err != nil {
				t.Fatal(err)
			}
			key, _ := usercache.Key(id)
			if err := rdb.Del(ctx, key).Err(); err != nil { // only the generation refuses
				t.Fatal(err)
			}
		}},
		{name: "filled meanwhile", want: false, between: func(ctx context.Context, t *testing.T, id string) {
			gen, err := s.Generation(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := s.Fill(ctx, id, gen, []byte(`{"fresh":true}`), time.Minute); err != nil || !ok {
				t.Fatalf("fresher fill = %v, %v", ok, err)
			}
		}},
		{name: "after a transaction cancelled by its caller", want: false, between: func(ctx context.Context, t *testing.T, id string) {
			w := s.Begin()
			if err := w.Invalidate(ctx, id); err != nil {
				t.Fatal(err)
			}
			gen, err := s.Generation(ctx, id) // a reader between the tombstone and the commit
			if err != nil {
				t.Fatal(err)
			}
			key, _ := usercache.Key(id)
			rdb.Del(ctx, key)
			if ok, err := s.Fill(ctx, id, gen, []byte(`{"old":true}`), time.Minute); err != nil || !ok {
				t.Fatalf("fill before the commit = %v, %v", ok, err)
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if err := w.Done(cancelled); err != nil {
				t.Fatal(err)
			}
			if v, _ := rdb.Get(ctx, key).Result(); v != usercache.Tombstone {
				t.Fatalf("after Done the entry is %q, want the tombstone", v)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			id := uuid.NewString()
			key, err := usercache.Key(id)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rdb.Del(context.Background(), key, "usergen:{"+id+"}") })
			gen, err := s.Generation(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			tt.between(ctx, t, id)
			ok, err := s.Fill(ctx, id, gen, []byte(`{"loaded":true}`), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want {
				t.Fatalf("Fill = %v, want %v", ok, tt.want)
			}
			v, err := rdb.Get(ctx, key).Result()
			if tt.want && (err != nil || v != `{"loaded":true}`) {
				t.Fatalf("entry = %q, %v", v, err)
			}
			if !tt.want && v == `{"loaded":true}` {
				t.Fatal("a refused fill was cached")
			}
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
		})
	}
}
