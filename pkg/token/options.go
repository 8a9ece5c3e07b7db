package token

import "time"

const (
	defaultPublishDelay = 10 * time.Minute
	defaultLeeway       = 30 * time.Second
	defaultReload       = time.Minute
)

// Option configures a KeySet, Issuer or Verifier. One option type serves all
// three so a single clock can be shared; options that do not apply to the
// value being built are ignored.
type Option func(*options)

type options struct {
	now          func() time.Time
	publishDelay time.Duration
	// reloadInterval is how often every process re-reads the key directory.
	reloadInterval time.Duration
	leeway         time.Duration
	onReloadErr    func(error)
	// verifiedCache bounds the Verifier's cache of verified tokens (0: none).
	verifiedCache int
}

func newOptions(opts []Option) options {
	o := options{
		now:            time.Now,
		publishDelay:   defaultPublishDelay,
		reloadInterval: defaultReload,
		leeway:         defaultLeeway,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock replaces time.Now, so tests can move time.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithPublishDelay sets how long a key must have been published by this
// process before it may sign (KeySet), counted from the reload that first
// found it in the directory, plus the reload interval (WithReloadInterval).
// It should be at least the JWKS Cache-Control max-age. Default 10 minutes.
func WithPublishDelay(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.publishDelay = d
		}
	}
}

// WithReloadInterval sets how often the processes sharing the key directory
// re-read it (KeySet): another replica may find a new key up to this much
// later, so a key waits publish delay + this interval before it signs. Watch's
// interval is used instead when it is longer. Default 1 minute (Watch's default).
func WithReloadInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.reloadInterval = d
		}
	}
}

// WithLeeway sets the clock-skew tolerance for exp, nbf and iat (Verifier).
// Default 30 seconds.
func WithLeeway(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.leeway = d
		}
	}
}

// WithReloadErrorHandler receives errors from the periodic reloads of
// KeySet.Watch; without it they are dropped (the previous keys stay active).
func WithReloadErrorHandler(fn func(error)) Option {
	return func(o *options) { o.onReloadErr = fn }
}
