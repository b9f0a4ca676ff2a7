package proxy

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/keygate/keygate/policy"
)

// writeError is the one place keygate renders its own answers: every error
// on an API route goes through here as a contract body.
func writeError(w *statusWriter, e *policy.Error) {
	body := e.Body()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 || e.Status == http.StatusTooManyRequests { // every 429 says when: 1s at least
		h.Set("Retry-After", strconv.FormatInt(policy.RetryAfterSeconds(e.RetryAfter), 10))
	}
	w.setCode(e.Code)
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// statusWriter records the status sent and stamps the request id on the
// answer. It drops 1xx answers (the upstream client skips them before it,
// a second line of defence), because no status outside the contract may
// leave keygate, and restores the fields keygate set before forwarding,
// should anything clear them. It sends only the headers answerHeader and
// the route allow, whatever wrote them.
type statusWriter struct {
	http.ResponseWriter
	requestID string
	status    int
	code      int  // contract code of the answer, for metrics and the idempotency store
	coded     bool // code was set: by writeError, forward or replay
	written   int64

	extra []string    // headers the route passes beside answerHeader's
	kept  http.Header // keygate's own fields when the request was forwarded

	capture     []byte // when not nil, a copy of the body, for the idempotency store
	captureMax  int
	captureOver bool // the body outgrew captureMax
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if code < 200 {
		clear(w.ResponseWriter.Header())
		return
	}
	w.status = code
	h := w.ResponseWriter.Header()
	for k, v := range w.kept {
		if _, ok := h[k]; !ok {
			h[k] = v
		}
	}
	for k := range h {
		if !answerHeader(k) && !slices.Contains(w.extra, k) {
			delete(h, k)
		}
	}
	h.Set("X-Request-Id", w.requestID)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	if w.capture != nil && !w.captureOver {
		if len(w.capture)+n > w.captureMax {
			w.captureOver = true
		} else {
			w.capture = append(w.capture, b[:n]...)
		}
	}
	return n, err
}

// setCode records the contract code of the answer about to be written. Only
// the code that decided the answer knows it; it travels here as a value, not
// in a header that could leave by mistake.
func (w *statusWriter) setCode(code int) { w.code, w.coded = code, true }

// codeLabel is the contract code as metrics and the idempotency store hold
// it: "" when no code was set (an answer cut off before it was decided).
func (w *statusWriter) codeLabel() string {
	if !w.coded {
		return ""
	}
	return strconv.Itoa(w.code)
}

// keep records the fields keygate has set so far (its rate-limit fields) and
// the route's extra answer headers, before the request is forwarded.
func (w *statusWriter) keep(route *policy.Route) {
	w.extra = route.AnswerHeaders()
	h := w.ResponseWriter.Header()
	for k, v := range h {
		if answerHeader(k) {
			if w.kept == nil {
				w.kept = make(http.Header, len(h))
			}
			w.kept[k] = v
		}
	}
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush through, for streamed success bodies.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
