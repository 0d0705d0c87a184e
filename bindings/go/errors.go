package llmux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Status is an llmux status code: 0 for success, a negative error class
// otherwise. The values are those of llmux_status in llmux.h; they are stable
// and only ever appended.
//
// A Status is also an error, so the error classes double as sentinels:
// errors.Is(err, llmux.ErrRateLimit) is true for every *Error of that class.
type Status int

// The status codes of llmux.h.
const (
	StatusOK              Status = 0
	StatusInvalidArgument Status = -1  // NULL where a value is required, bad option version
	StatusNoMemory        Status = -2  // an allocation failed
	StatusConfig          Status = -3  // the config is invalid; the message names the JSON path
	StatusIO              Status = -4  // a file could not be read
	StatusBadRequest      Status = -5  // the request JSON is invalid (HTTP 400), or a provider said so
	StatusUnknownModel    Status = -6  // the requested model is no configured alias (HTTP 404)
	StatusAuth            Status = -7  // a provider rejected the credentials, or none were set
	StatusPermission      Status = -8  // the gateway key may not do this
	StatusNotFound        Status = -9  // the provider does not know the model or path
	StatusRateLimit       Status = -10 // the provider throttled the call (429)
	StatusContextWindow   Status = -11 // the prompt does not fit the model's context window
	StatusContentFilter   Status = -12 // the provider refused the content
	StatusProvider        Status = -13 // the provider failed (5xx, other unexpected status)
	StatusConnect         Status = -14 // could not connect, or the connection dropped
	StatusTimeout         Status = -15 // the call or an attempt ran out of time
	StatusBadResponse     Status = -16 // the provider's response could not be understood
	StatusBudget          Status = -17 // the gateway key's budget would be exceeded
	StatusUnsupported     Status = -18 // not available for this provider or build
	StatusCancelled       Status = -19 // the caller stopped the call
	StatusInternal        Status = -20 // a bug in llmux
	StatusLimit           Status = -21 // a documented capacity limit of llmux (ledger.max_rows)
	StatusQuota           Status = -22 // the provider account's quota or credit is used up
)

// Sentinel errors, one per error class, for errors.Is.
var (
	ErrInvalidArgument error = StatusInvalidArgument
	ErrNoMemory        error = StatusNoMemory
	ErrConfig          error = StatusConfig
	ErrIO              error = StatusIO
	ErrBadRequest      error = StatusBadRequest
	ErrUnknownModel    error = StatusUnknownModel
	ErrAuth            error = StatusAuth
	ErrPermission      error = StatusPermission
	ErrNotFound        error = StatusNotFound
	ErrRateLimit       error = StatusRateLimit
	ErrContextWindow   error = StatusContextWindow
	ErrContentFilter   error = StatusContentFilter
	ErrProvider        error = StatusProvider
	ErrConnect         error = StatusConnect
	ErrTimeout         error = StatusTimeout
	ErrBadResponse     error = StatusBadResponse
	ErrBudget          error = StatusBudget
	ErrUnsupported     error = StatusUnsupported
	ErrCancelled       error = StatusCancelled
	ErrInternal        error = StatusInternal
	ErrLimit           error = StatusLimit
	ErrQuota           error = StatusQuota
)

// ErrClosed is returned by every method of a Gateway after Close.
var ErrClosed = errors.New("llmux: gateway is closed")

// String is the library's name for the status (llmux_strerror), e.g.
// "rate limited".
func (s Status) String() string { return cStrerror(int(s)) }

// Error makes a Status usable as a sentinel error.
func (s Status) Error() string { return "llmux: " + s.String() }

// Error is the error of a failed call. It carries everything the C result
// held, so no thread-local state is involved: the class, the message, the
// HTTP status, the OpenAI-style error body, and the Meta of the call
// (provider, model and the trace of every attempt).
//
// Use errors.Is(err, llmux.ErrTimeout) to test the class and errors.As to get
// the *Error. When the call ended because its context was cancelled or ran
// out of time, the error also matches context.Canceled or
// context.DeadlineExceeded.
type Error struct {
	Code       Status // the error class
	Message    string // llmux_result_error: what failed and where
	HTTPStatus int    // the provider's last HTTP status, or the one llmux assigned; 0 if none
	Type       string // error.type of the OpenAI-style error body, e.g. "rate_limit_error"
	Param      string // error.param, if any
	ErrorCode  string // error.code, if any (as text)
	Body       []byte // the OpenAI-style error object {"error":{...}}, verbatim
	Meta       Meta   // provider, model and trace of the failed call

	cause error // context error that ended the call, if any
}

func (e *Error) Error() string {
	msg := "llmux: " + e.Code.String()
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.HTTPStatus != 0 && !mentionsStatus(e.Message, e.HTTPStatus) {
		msg += " (HTTP " + strconv.Itoa(e.HTTPStatus) + ")"
	}
	return msg
}

// mentionsStatus reports whether msg already says "HTTP <status>" (libllmux
// names the provider's status in its message), so Error says it once.
func mentionsStatus(msg string, status int) bool {
	want := "HTTP " + strconv.Itoa(status)
	for i := 0; ; {
		j := strings.Index(msg[i:], want)
		if j < 0 {
			return false
		}
		end := i + j + len(want)
		if end == len(msg) || msg[end] < '0' || msg[end] > '9' {
			return true
		}
		i = end
	}
}

// Is reports whether target is the sentinel of e's class (a Status).
func (e *Error) Is(target error) bool {
	s, ok := target.(Status)
	return ok && s == e.Code
}

// As lets errors.As extract the class as a Status.
func (e *Error) As(target any) bool {
	if p, ok := target.(*Status); ok {
		*p = e.Code
		return true
	}
	return false
}

// Unwrap returns the context error that ended the call, if any.
func (e *Error) Unwrap() error { return e.cause }

// errorBody is the OpenAI-style error object of a failed result.
type errorBody struct {
	Error struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Param   json.RawMessage `json:"param"`
		Code    json.RawMessage `json:"code"`
	} `json:"error"`
}

// newCallError builds the *Error of a failed result.
func newCallError(d *resultData, meta Meta) *Error {
	e := &Error{Code: d.status, Message: d.errMsg, HTTPStatus: d.httpStatus, Meta: meta}
	if len(d.json) > 0 {
		e.Body = d.json
		var b errorBody
		if json.Unmarshal(d.json, &b) == nil {
			e.Type = b.Error.Type
			e.Param = rawText(b.Error.Param)
			e.ErrorCode = rawText(b.Error.Code)
			if e.Message == "" {
				e.Message = b.Error.Message
			}
		}
	}
	return e
}

// rawText turns a JSON scalar into text: strings unquoted, null to "".
func rawText(r json.RawMessage) string {
	if len(r) == 0 || string(r) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		return s
	}
	return string(r)
}

func openError(st Status, msg string) *Error {
	if msg == "" {
		msg = st.String()
	}
	return &Error{Code: st, Message: msg}
}

func argError(format string, args ...any) *Error {
	return &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// contextError is the error of a call its context ended before libllmux did.
func contextError(ctx context.Context) *Error {
	code := StatusCancelled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = StatusTimeout
	}
	return &Error{Code: code, Message: context.Cause(ctx).Error(), cause: ctx.Err()}
}

// deadlineSlack is how close to the context's deadline a libllmux timeout
// must come to count as that deadline (libllmux was given the deadline as
// timeout_ms, and its clock and Go's differ by a little).
const deadlineSlack = 50 * time.Millisecond

// withContextCause marks err as caused by ctx when ctx has ended and err is a
// cancellation or timeout, or when err is the timeout that came from ctx's
// deadline (libllmux may notice it a moment before Go does).
func withContextCause(err error, ctx context.Context, o *callOpts) error {
	var e *Error
	if !errors.As(err, &e) || e.cause != nil {
		return err
	}
	switch {
	case ctx.Err() != nil && (e.Code == StatusCancelled || e.Code == StatusTimeout):
		e.cause = ctx.Err()
	case e.Code == StatusTimeout && o != nil && !o.ctxDeadline.IsZero() &&
		time.Until(o.ctxDeadline) < deadlineSlack:
		e.cause = context.DeadlineExceeded
	}
	return err
}
