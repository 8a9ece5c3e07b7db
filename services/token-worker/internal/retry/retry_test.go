package retry

import (
	"errors"
	"io"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{6, 32 * time.Second}, {7, time.Minute}, {100, time.Minute},
	}
	for _, tt := range tests {
		for range 20 {
			got := Backoff(tt.n, time.Second, time.Minute)
			lo, hi := tt.want*8/10, tt.want*12/10
			if got < lo || got > hi {
				t.Fatalf("Backoff(%d) = %s, want %s ±20%%", tt.n, got, tt.want)
			}
		}
	}
}

func TestClasses(t *testing.T) {
	if err := Permanent(io.EOF); !errors.Is(err, ErrPermanent) || !errors.Is(err, io.EOF) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Permanent(EOF) = %v", err)
	}
	if err := Unavailable(io.EOF); !errors.Is(err, ErrUnavailable) || !errors.Is(err, io.EOF) || errors.Is(err, ErrPermanent) {
		t.Fatalf("Unavailable(EOF) = %v", err)
	}
}
