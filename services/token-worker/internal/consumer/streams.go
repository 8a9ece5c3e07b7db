package consumer

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/talentforge/auth/pkg/events"
)

// Streams sets up the events stream and the dead-letter stream once per process, for
// all its consumers (concurrent stream updates and consumer creations race in the
// server).
type Streams struct {
	js   jetstream.JetStream
	ns   events.Namespace
	mu   sync.Mutex
	done bool
}

// NewStreams returns the set-up of the streams of namespace ns (NATS_NAMESPACE) on js.
func NewStreams(js jetstream.JetStream, ns events.Namespace) *Streams {
	return &Streams{js: js, ns: ns}
}

// Ensure creates both streams or brings them to their configuration, unless done already.
func (s *Streams) Ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	if _, err := s.ns.EnsureStream(ctx, s.js); err != nil {
		return err
	}
	if err := EnsureDeadLetterStream(ctx, s.js, s.ns); err != nil {
		return err
	}
	s.done = true
	return nil
}

// reset makes the next Ensure set the streams up again (they went missing).
func (s *Streams) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = false
}
