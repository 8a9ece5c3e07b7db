package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// client bounds each call, so that a hung service fails its step, not the run's bound.
var client = &http.Client{Timeout: 20 * time.Second}

// API is the JSON API of a service the run started, at URL (http://127.0.0.1:PORT).
type API struct{ URL string }

// Call sends body (if not nil) as JSON, with bearer (if not empty) as the Bearer token,
// and fails unless the answer's status is want; out (if not nil) gets the JSON answer.
// It returns the answer's headers.
func (a API) Call(ctx context.Context, method, path, bearer string, body any, want int, out any) (http.Header, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d %s, want %d", method, path, res.StatusCode, bytes.TrimSpace(data), want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return res.Header, nil
}
