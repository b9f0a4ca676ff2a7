package proxy

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestTLSUpstream: an https upstream whose certificate is not trusted gets a
// contract 500; trusting its CA through caPEM (KEYGATE_UPSTREAM_CA_FILE) makes
// it work.
func TestTLSUpstream(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"over TLS","code":0}`)
	}))
	t.Cleanup(up.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw})
	if !ParseCAFile(caPEM) {
		t.Fatal("ParseCAFile rejects a PEM certificate")
	}
	tests := []struct {
		name   string
		ca     []byte
		status int
	}{
		{"untrusted certificate", nil, 500},
		{"trusted through the CA file", caPEM, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, withUpstreamURL(up.URL), func(o *Options) { o.Transport = NewTransport(2*time.Second, tc.ca) })
			a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
			if a.status != tc.status {
				t.Errorf("answer = %d %s, want %d", a.status, a.raw, tc.status)
			}
		})
	}
}
