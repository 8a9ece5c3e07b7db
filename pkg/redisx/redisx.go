// Package redisx builds the Redis client from config: one node, Cluster or Sentinel,
// all behind redis.UniversalClient so stores never care which.
package redisx

import (
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/tracing"
)

// Options select the topology; the first non-empty of ClusterAddrs, SentinelAddrs, URL wins.
type Options struct {
	URL            string
	ClusterAddrs   []string
	SentinelAddrs  []string
	SentinelMaster string
	// PoolSize and MinIdleConns size the connection pool (per node for Cluster); zero
	// keeps go-redis' defaults (10 per GOMAXPROCS, none kept idle). A pool_size or
	// min_idle_conns in URL wins for a single node.
	PoolSize, MinIdleConns int
}

// New returns a client; it does not ping. While tracing is on (tracing.On), every
// command and pipeline is a client span of the global tracer provider, with the command
// name but never its arguments (session and token hashes, addresses); while it is off
// the client has no tracing hook at all.
func New(o Options) (redis.UniversalClient, error) {
	c, err := newClient(o)
	if err != nil {
		return nil, err
	}
	if !tracing.On() {
		return c, nil
	}
	if err := redisotel.InstrumentTracing(c, redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis tracing: %w", err)
	}
	return c, nil
}

func newClient(o Options) (redis.UniversalClient, error) {
	// Auth and TLS settings of the URL also apply to Cluster and Sentinel nodes.
	base, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: invalid URL")
	}
	switch {
	case len(o.ClusterAddrs) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: o.ClusterAddrs, Username: base.Username, Password: base.Password, TLSConfig: base.TLSConfig,
			PoolSize: o.PoolSize, MinIdleConns: o.MinIdleConns,
		}), nil
	case len(o.SentinelAddrs) > 0:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: o.SentinelMaster, SentinelAddrs: o.SentinelAddrs,
			Username: base.Username, Password: base.Password, DB: base.DB, TLSConfig: base.TLSConfig,
			PoolSize: o.PoolSize, MinIdleConns: o.MinIdleConns,
		}), nil
	default:
		if base.PoolSize == 0 {
			base.PoolSize = o.PoolSize
		}
		if base.MinIdleConns == 0 {
			base.MinIdleConns = o.MinIdleConns
		}
		return redis.NewClient(base), nil
	}
}
