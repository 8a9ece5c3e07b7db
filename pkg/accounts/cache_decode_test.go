package accounts

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestDecodeCache(t *testing.T) {
	var d decodeCache
	now := time.Now().UTC().Truncate(time.Millisecond)
	u := User{ID: "u1", Email: "a@example.com", Roles: []string{"user"}, Permissions: []string{"jobs:read"},
		EmailVerifiedAt: &now, CreatedAt: now}
	raw, err := json.Marshal(toCached(u))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.get("u1", string(raw)); ok {
		t.Fatal("hit on an empty cache")
	}
	d.put("u1", string(raw), u)
	got, ok := d.get("u1", string(raw))
	if !ok || !reflect.DeepEqual(got, u) {
		t.Fatalf("get = %+v, %v; want %+v", got, ok, u)
	}
	// A hit is the caller's own copy.
	got.Roles[0], got.Permissions[0] = "admin", "x"
	*got.EmailVerifiedAt = time.Time{}
	u.Roles = []string{"admin"} // the value put is copied too
	if again, _ := d.get("u1", string(raw)); again.Roles[0] != "user" || again.Permissions[0] != "jobs:read" ||
		!again.EmailVerifiedAt.Equal(now) {
		t.Fatalf("the cached user changed through a copy: %+v", again)
	}
	// Any other answer from Redis misses: the new bytes are decoded, never the old user.
	disabled := now.Add(time.Second)
	u.DisabledAt = &disabled
	raw2, _ := json.Marshal(toCached(u))
	if _, ok := d.get("u1", string(raw2)); ok {
		t.Fatal("a changed entry hit the old decoding")
	}
	if _, ok := d.get("u2", string(raw)); ok {
		t.Fatal("another user hit")
	}
	// Bounded.
	for i := range decodeShards * decodeShardCap * 2 {
		d.put(fmt.Sprint("user-", i), "{}", User{})
	}
	n := 0
	for i := range d.shards {
		if l := len(d.shards[i].m); l > decodeShardCap {
			t.Fatalf("shard %d holds %d entries, cap %d", i, l, decodeShardCap)
		}
		n += len(d.shards[i].m)
	}
	if n > decodeShards*decodeShardCap {
		t.Fatalf("%d entries", n)
	}
}
