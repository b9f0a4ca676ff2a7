package policy

import "testing"

func TestLeak(t *testing.T) {
	const key = "KEY-TEST-0000-0000-0000-0001"
	const token = "tok-global-secret"
	tests := []struct {
		name, s string
		want    string
	}{
		// Keymint's own messages and plain text pass.
		{"documented message", "License key not found", ""},
		{"sentence with a full stop", "Too many requests. Please try again later.", ""},
		{"camelCase parameter", "Invalid maxActivations", ""},
		{"email sentence", "Customer with this email already exists", ""},
		{"small number", "Activation 3 of 5", ""},
		{"hyphenated word", "Re-activation required", ""},
		{"datetime", "2027-01-31T10:00:00Z", ""},
		{"and/or", "Product and/or key missing", ""},
		// The messages.
		{"mysql access denied", "ER_ACCESS_DENIED_ERROR: Access denied for user 'keymint'@'db-primary.prod.internal'", LeakDriver},
		{"econnrefused host", "connect ECONNREFUSED db-primary.prod.internal", LeakDriver},
		{"bare internal host", "could not reach db-primary.prod.internal", LeakHost},
		{"constraint name", "duplicate value for licenses_key_unique", LeakDriver},
		{"postgres constraint", `violates unique constraint "uq_key"`, LeakDriver},
		{"hex-encoded IP", "peer 0x0a000307 refused", LeakIP},
		{"integer IP", "peer 167772935 refused", LeakIP},
		{"dotted IP", "peer 10.0.3.7 refused", LeakIP},
		{"IPv6", "peer fe80::1 refused", LeakIP},
		{"IPv6 bracketed with port", "dial tcp [::1]:6379: refused", LeakIP},
		{"host:port", "dial db-primary:5432 failed", LeakHost},
		{"aws access key id", "signing with AKIAIOSFODNN7EXAMPLE failed", LeakSecret},
		{"long hex", "session 9f86d081884c7d659a2feaa0c55ad015 expired", LeakSecret},
		{"caller's license key", "Key " + key + " is invalid", LeakEcho},
		{"caller's key without dashes", "Key keytest0000000000000001 is invalid", LeakEcho},
		{"caller's token", "token tok-global-secret revoked", LeakEcho},
		{"url", "see https://wiki.internal/x", LeakURL},
		{"dsn", "postgres://keymint:hunter2@db:5432/keys", LeakURL},
		{"dsn without scheme", "keymint:hunter2@db-primary", LeakURL},
		{"password word", "password authentication failed", LeakSecret},
		{"unix path", "open /etc/keygate/x failed", LeakPath},
		{"windows path", `cannot open C:\srv\app.ini`, LeakPath},
		{"relative path", "see ./config failed", LeakPath},
		{"go frame", "main.go:42 +0x1d", LeakHost},
		{"java frame", "at com.acme.Db.connect(Db.java:42)", LeakHost},
		{"python traceback", "Traceback (most recent call last)", LeakStack},
		{"panic", "panic: runtime error", LeakStack},
		{"sql text", "SELECT key FROM licenses WHERE id = 1", LeakDriver},
		{"oracle code", "ORA-00942 table missing", LeakDriver},
		{"markup", "<b>License</b>", LeakMarkup},
		{"braces", "License {id} expired", LeakMarkup},
		{"newline", "License\nexpired", LeakControl},
		{"zero-width", "License\u200bexpired", LeakControl},
		{"localhost", "connect to localhost failed", LeakHost},
		{"version", "Use v1.2 or later", LeakHost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Leak(tc.s, token, key); got != tc.want {
				t.Errorf("Leak(%q) = %q, want %q", tc.s, got, tc.want)
			}
		})
	}
}

// TestBuiltinMessagesAreClean: every message the built-in policy lists passes
// the detector (Parse checks it; this shows the list is not empty).
func TestBuiltinMessagesAreClean(t *testing.T) {
	for _, r := range Default().Routes {
		if r.Response == nil || len(r.Response.Messages) < 20 {
			t.Fatalf("route %s lists %d messages, want Keymint's documented ones", r.Name, len(r.Response.Messages))
		}
		for _, m := range r.Response.Messages {
			if c := Leak(m); c != "" {
				t.Errorf("Leak(%q) = %q, want clean", m, c)
			}
		}
	}
}

func BenchmarkLeak(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Leak("License key not found", "tok-global-secret", "KEY-TEST-0000-0000-0000-0001")
	}
}
