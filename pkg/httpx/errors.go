package httpx

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/logging"
)

// Error is an answer with a status and a stable snake_case code. Use cases return their
// own sentinels; the service maps them to Errors in one place.
type Error struct {
	Status  int
	Code    string
	Message string
	// Header is added to the answer (Retry-After, WWW-Authenticate).
	Header http.Header
	// Err is the cause, logged and never shown.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Code, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// NewError returns an answer with the given status, code and public message.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Common answers of the plumbing.
var (
	ErrInvalidJSON      = NewError(http.StatusBadRequest, "invalid_json", "The request body is not valid JSON.")
	ErrTooLarge         = NewError(http.StatusRequestEntityTooLarge, "payload_too_large", "The request body is too large.")
	ErrUnsupportedMedia = NewError(http.StatusUnsupportedMediaType, "unsupported_media_type", "The request body must be application/json.")
	ErrNotFound         = NewError(http.StatusNotFound, "not_found", "Not found.")
	ErrMethodNotAllowed = NewError(http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed.")
	ErrUnauthorized     = NewError(http.StatusUnauthorized, "unauthorized", "A valid access token is required.")
	ErrUnavailable      = NewError(http.StatusServiceUnavailable, "unavailable", "The service is temporarily unavailable.")
	ErrInternal         = NewError(http.StatusInternalServerError, "internal_error", "Something went wrong on our side.")
)

// ErrorBody is the v1 error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// Problem is the RFC 9457 answer, for routes under a problem prefix (v2).
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"request_id"`
}

// asError turns anything a handler returned into an Error.
func asError(err error, driverUnavailable func(error) bool) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return ErrNotFound
		case http.StatusMethodNotAllowed:
			return ErrMethodNotAllowed
		case http.StatusRequestEntityTooLarge:
			return ErrTooLarge
		case http.StatusUnsupportedMediaType:
			return ErrUnsupportedMedia
		case http.StatusUnauthorized:
			return ErrUnauthorized
		case http.StatusServiceUnavailable:
			return ErrUnavailable
		}
		if he.Code >= 400 && he.Code < 500 {
			return &Error{Status: he.Code, Code: strings.ReplaceAll(strings.ToLower(http.StatusText(he.Code)), " ", "_"),
				Message: http.StatusText(he.Code) + ".", Err: err}
		}
	}
	if unavailable(err) || driverUnavailable != nil && driverUnavailable(err) {
		return &Error{Status: ErrUnavailable.Status, Code: ErrUnavailable.Code, Message: ErrUnavailable.Message, Err: err}
	}
	return &Error{Status: ErrInternal.Status, Code: ErrInternal.Code, Message: ErrInternal.Message, Err: err}
}

// unavailable recognises a dependency that cannot be reached (refused, reset, timed
// out, a database/sql pool closed): the client should retry, so it is 503, not 500. What
// only a driver can tell comes through WithUnavailable.
func unavailable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sql.ErrConnDone) ||
		strings.Contains(err.Error(), "sql: database is closed")
}

// StatusClientClosedRequest (nginx's 499) is what a request is counted and logged as
// when its client went away before the answer (the gateway's ForwardAuth timed out or the
// browser navigated away): nobody reads it, and it is no failure of ours.
const StatusClientClosedRequest = 499

// clientGone reports whether err is the cancellation of a request its client abandoned:
// the handler failed with context.Canceled and the request's context was canceled, not
// timed out. A deadline of our own (context.DeadlineExceeded, 503) or a cancellation
// while the client is still there (500) stays a server-side failure.
func clientGone(err error, c echo.Context) bool {
	return errors.Is(err, context.Canceled) && errors.Is(c.Request().Context().Err(), context.Canceled)
}

// errorHandler renders every error the same way and logs the unexpected ones with the
// request id that the body carries, so an operator can find the cause. A request the
// client abandoned gets a bare 499 (no body: nobody is listening), logged at debug level.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if clientGone(err, c) {
		logging.From(c.Request().Context(), s.log).Debug("client closed the request", zap.Error(err))
		c.Response().WriteHeader(StatusClientClosedRequest)
		return
	}
	if s.opts.mapError != nil {
		err = s.opts.mapError(err)
	}
	e := asError(err, s.opts.unavailable)
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	if e.Status >= 500 {
		logging.From(c.Request().Context(), s.log).Error("request failed",
			zap.Int("status", e.Status), zap.String("code", e.Code), zap.Error(err))
	}
	h := c.Response().Header()
	for k, vs := range e.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	var werr error
	if s.isProblemPath(c.Request().URL.Path) {
		h.Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(e.Status)
		werr = jsonEncode(c.Response(), Problem{
			Type: "about:blank", Title: http.StatusText(e.Status), Status: e.Status,
			Detail: e.Message, Code: e.Code, RequestID: rid,
		})
	} else if c.Request().Method == http.MethodHead {
		werr = c.NoContent(e.Status)
	} else {
		werr = c.JSON(e.Status, ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message, RequestID: rid}})
	}
	if werr != nil {
		logging.From(c.Request().Context(), s.log).Debug("write error answer", zap.Error(werr))
	}
}

func (s *Server) isProblemPath(path string) bool {
	for _, p := range s.opts.problemPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// ErrorTable maps use-case errors to answers, first match wins: one table a service,
// ending with the shared errors (accounts.Errors).
type ErrorTable []ErrorMapping

// ErrorMapping is one row of an ErrorTable.
type ErrorMapping struct {
	Err  error
	Resp *Error
}

// Map returns the answer of err's row, with err as its cause, or err itself when no row
// matches (the error handler answers it 500, or 503 for an unreachable dependency). An
// answer "unauthorized" carries the Bearer challenge (RFC 6750).
func (t ErrorTable) Map(err error) error {
	for _, e := range t {
		if errors.Is(err, e.Err) {
			out := *e.Resp
			out.Err = err
			if out.Status == http.StatusUnauthorized && out.Code == ErrUnauthorized.Code {
				out.Header = http.Header{"Www-Authenticate": {`Bearer realm="talentforge"`}}
			}
			return &out
		}
	}
	return err
}
