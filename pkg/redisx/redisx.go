// Package redisx builds the Redis client from config: one node, Cluster or Sentinel,
// all behind redis.UniversalClient so stores never care which.
package redisx

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Options select the topology; the first non-empty of ClusterAddrs, SentinelAddrs, URL wins.
type Options struct {
	URL            string
	ClusterAddrs   []string
	SentinelAddrs  []string
	SentinelMaster string
}

// New returns a client; it does not ping.
func New(o Options) (redis.UniversalClient, error) {
	// Auth and TLS settings of the URL also apply to Cluster and Sentinel nodes.
	base, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: invalid URL")
	}
	switch {
	case len(o.ClusterAddrs) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: o.ClusterAddrs, Username: base.Username, Password: base.Password, TLSConfig: base.TLSConfig,
		}), nil
	case len(o.SentinelAddrs) > 0:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: o.SentinelMaster, SentinelAddrs: o.SentinelAddrs,
			Username: base.Username, Password: base.Password, DB: base.DB, TLSConfig: base.TLSConfig,
		}), nil
	default:
		return redis.NewClient(base), nil
	}
}
