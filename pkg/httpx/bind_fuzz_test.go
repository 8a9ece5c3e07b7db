package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// fuzzLogin has the shape of the login request.
type fuzzLogin struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// FuzzBindJSON sends arbitrary bytes as a request body through BindJSON, as
// bodyPolicy leaves it (behind http.MaxBytesReader). BindJSON must never
// panic and must return nil or an *Error with status 400 or 413. Seeds are in
// testdata/fuzz/FuzzBindJSON.
func FuzzBindJSON(f *testing.F) {
	for _, s := range []string{
		`{"email":"ann@example.com","password":"correct horse battery staple","name":"Ann"}`,
		`{"email":"ann@example.com","password":"x","role":"admin","email_verified":true}`,
		`{"email":1}`,
		`{"email":"a"} {"email":"b"}`,
		`{"email":"\ud800","name":"\u0000"}`,
		`null`,
		``,
		" \r\n\t",
		`[`,
		"\xef\xbb\xbf{}", // BOM
	} {
		f.Add([]byte(s))
	}
	e := echo.New()

	f.Fuzz(func(t *testing.T, body []byte) {
		// With the production limit, and with one that cuts this body in
		// half so the 413 path is exercised on short inputs too.
		full, errFull := bind(e, body, MaxBodyBytes)
		checkBindErr(t, body, errFull)
		if int64(len(body)) > MaxBodyBytes {
			if errFull == nil {
				t.Fatalf("%d-byte body over the %d-byte limit accepted", len(body), MaxBodyBytes)
			}
		} else if he := (*Error)(nil); errors.As(errFull, &he) && he.Status == http.StatusRequestEntityTooLarge {
			t.Fatalf("%d-byte body refused as too large: %v", len(body), errFull)
		}

		limit := int64(len(body) / 2)
		_, errCut := bind(e, body, limit)
		checkBindErr(t, body, errCut)
		if int64(len(body)) > limit && errCut == nil {
			t.Fatalf("body of %d bytes accepted behind a %d-byte limit: %q", len(body), limit, body)
		}

		// Against json.Unmarshal, the reference for one JSON value: BindJSON
		// accepts exactly what it accepts (plus an empty body) and binds the
		// same fields.
		if errFull == nil && len(bytes.TrimLeft(body, " \t\r\n")) == 0 {
			if full != (fuzzLogin{}) {
				t.Fatalf("empty body %q bound %+v", body, full)
			}
			return
		}
		if int64(len(body)) > MaxBodyBytes {
			return
		}
		var want fuzzLogin
		errRef := json.Unmarshal(body, &want)
		if (errFull == nil) != (errRef == nil) {
			t.Fatalf("body %q: BindJSON = %v, json.Unmarshal = %v", body, errFull, errRef)
		}
		if errFull == nil && full != want {
			t.Fatalf("body %q: BindJSON bound %+v, json.Unmarshal %+v", body, full, want)
		}
	})
}

// bind runs BindJSON on body behind a MaxBytesReader of limit bytes.
func bind(e *echo.Echo, body []byte, limit int64) (fuzzLogin, error) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/auth/login", bytes.NewReader(body))
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	req.Body = http.MaxBytesReader(rec, req.Body, limit)
	var v fuzzLogin
	err := BindJSON(e.NewContext(req, rec), &v)
	return v, err
}

func checkBindErr(t *testing.T, body []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var he *Error
	if !errors.As(err, &he) {
		t.Fatalf("body %q: error %T %v is not an *httpx.Error", body, err, err)
	}
	if he.Status != http.StatusBadRequest && he.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("body %q: status %d (%v), want 400 or 413", body, he.Status, err)
	}
}
