package leak

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
		{"mysql access denied", "ER_ACCESS_DENIED_ERROR: Access denied for user 'keymint'@'db-primary.prod.internal'", Driver},
		{"econnrefused host", "connect ECONNREFUSED db-primary.prod.internal", Driver},
		{"bare internal host", "could not reach db-primary.prod.internal", Host},
		{"constraint name", "duplicate value for licenses_key_unique", Driver},
		{"postgres constraint", `violates unique constraint "uq_key"`, Driver},
		{"hex-encoded IP", "peer 0x0a000307 refused", IP},
		{"integer IP", "peer 167772935 refused", IP},
		{"dotted IP", "peer 10.0.3.7 refused", IP},
		{"IPv6", "peer fe80::1 refused", IP},
		{"IPv6 bracketed with port", "dial tcp [::1]:6379: refused", IP},
		{"host:port", "dial db-primary:5432 failed", Host},
		{"aws access key id", "signing with AKIAIOSFODNN7EXAMPLE failed", Secret},
		{"long hex", "session 9f86d081884c7d659a2feaa0c55ad015 expired", Secret},
		{"caller's license key", "Key " + key + " is invalid", Echo},
		{"caller's key without dashes", "Key keytest0000000000000001 is invalid", Echo},
		{"caller's token", "token tok-global-secret revoked", Echo},
		{"url", "see https://wiki.internal/x", URL},
		{"dsn", "postgres://keymint:hunter2@db:5432/keys", URL},
		{"dsn without scheme", "keymint:hunter2@db-primary", URL},
		{"password word", "password authentication failed", Secret},
		{"unix path", "open /etc/keygate/x failed", Path},
		{"windows path", `cannot open C:\srv\app.ini`, Path},
		{"relative path", "see ./config failed", Path},
		{"go frame", "main.go:42 +0x1d", Host},
		{"java frame", "at com.acme.Db.connect(Db.java:42)", Host},
		{"python traceback", "Traceback (most recent call last)", Stack},
		{"panic", "panic: runtime error", Stack},
		{"sql text", "SELECT key FROM licenses WHERE id = 1", Driver},
		{"oracle code", "ORA-00942 table missing", Driver},
		{"markup", "<b>License</b>", Markup},
		{"braces", "License {id} expired", Markup},
		{"newline", "License\nexpired", Control},
		{"zero-width", "License\u200bexpired", Control},
		{"localhost", "connect to localhost failed", Host},
		{"version", "Use v1.2 or later", Host},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Class(tc.s, token, key); got != tc.want {
				t.Errorf("Class(%q) = %q, want %q", tc.s, got, tc.want)
			}
		})
	}
}

func BenchmarkLeak(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Class("License key not found", "tok-global-secret", "KEY-TEST-0000-0000-0000-0001")
	}
}
