package redisx

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func testURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

func TestNewPingsRealServer(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"configured url", testURL()},
		{"explicit db 0", "redis://127.0.0.1:6379/0"},
		{"db 1", "redis://127.0.0.1:6379/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Options{URL: tt.url})
			if err != nil {
				t.Fatalf("New(%s): %v", tt.url, err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := c.Ping(ctx).Err(); err != nil {
				t.Fatalf("Redis not reachable at %s: %v", tt.url, err)
			}
			if _, ok := c.(*redis.Client); !ok {
				t.Fatalf("single node URL gave %T, want *redis.Client", c)
			}
		})
	}
}

func TestNewSelectsDatabaseFromURL(t *testing.T) {
	c, err := New(Options{URL: "redis://127.0.0.1:6379/3"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if db := c.(*redis.Client).Options().DB; db != 3 {
		t.Fatalf("DB = %d, want 3", db)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis not reachable: %v", err)
	}
}

func TestNewInvalidURL(t *testing.T) {
	const secret = "Sup3rS3cretPw"
	tests := []struct {
		name string
		o    Options
	}{
		{"empty", Options{}},
		{"http scheme", Options{URL: "http://127.0.0.1:6379"}},
		{"garbage", Options{URL: "::not a url"}},
		{"bad db with password", Options{URL: "redis://:" + secret + "@127.0.0.1:6379/notadb"}},
		{"bad port with password", Options{URL: "redis://user:" + secret + "@127.0.0.1:port/0"}},
		{"invalid url with cluster addrs", Options{URL: "http://x", ClusterAddrs: []string{"a:7000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.o)
			if err == nil {
				c.Close()
				t.Fatalf("New(%+v) succeeded", tt.o)
			}
			if !strings.HasPrefix(err.Error(), "REDIS_URL") {
				t.Fatalf("error %q does not name REDIS_URL", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestNewTopologies(t *testing.T) {
	t.Run("cluster inherits URL credentials", func(t *testing.T) {
		c, err := New(Options{URL: "redis://u:pw@127.0.0.1:6379/0", ClusterAddrs: []string{"10.0.0.1:7000", "10.0.0.2:7000"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cc, ok := c.(*redis.ClusterClient)
		if !ok {
			t.Fatalf("cluster addrs gave %T, want *redis.ClusterClient", c)
		}
		o := cc.Options()
		if len(o.Addrs) != 2 || o.Username != "u" || o.Password != "pw" {
			t.Fatalf("cluster options = addrs %v user %q password %q", o.Addrs, o.Username, o.Password)
		}
	})
	t.Run("sentinel is a failover client", func(t *testing.T) {
		c, err := New(Options{URL: "redis://:pw@127.0.0.1:6379/2", SentinelAddrs: []string{"10.0.0.1:26379"}, SentinelMaster: "mymaster"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rc, ok := c.(*redis.Client)
		if !ok {
			t.Fatalf("sentinel addrs gave %T", c)
		}
		if o := rc.Options(); o.Password != "pw" || o.DB != 2 || o.Addr != "FailoverClient" {
			t.Fatalf("failover options = addr %q password %q db %d", o.Addr, o.Password, o.DB)
		}
	})
}

func TestNewPoolSize(t *testing.T) {
	c, err := New(Options{URL: "redis://127.0.0.1:6379/0", PoolSize: 77, MinIdleConns: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if o := c.(*redis.Client).Options(); o.PoolSize != 77 || o.MinIdleConns != 5 {
		t.Fatalf("PoolSize, MinIdleConns = %d, %d; want 77, 5", o.PoolSize, o.MinIdleConns)
	}
	c2, err := New(Options{URL: "redis://127.0.0.1:6379/0?pool_size=9", PoolSize: 77})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if n := c2.(*redis.Client).Options().PoolSize; n != 9 {
		t.Fatalf("PoolSize = %d, want the URL's 9", n)
	}
}
