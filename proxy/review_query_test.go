package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// TestForwardedQueryOneReading: a query a body route forwards (allow_query)
// is one that every backend reads the same way: a name sent twice (one
// backend reads the first, another the last, a third both), a ';' (read as
// a separator by some, as part of the value by others) or a '#' (the end
// of the target for some) is refused with 400 code 1, never forwarded.
func TestForwardedQueryOneReading(t *testing.T) {
	p, err := policy.Parse("t", []byte(`routes:
  - name: get
    method: POST
    path: /get-key
    auth: none
    params:
      licenseKey: {required: true}
    allow_query: [trace]
`))
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, withPolicy(p))
	body := `{"licenseKey":"k"}`
	tests := []struct {
		target, query string // query: what the backend reads; "" refused
	}{
		{"/get-key?trace=1", "trace=1"},
		{"/get-key?trace=1&other=2", "trace=1"},
		{"/get-key?trace=1%3BlicenseKey=evil", "trace=1%3BlicenseKey=evil"}, // one value, read the same by all
		{"/get-key?trace=1&trace=2", ""},
		{"/get-key?trace=1&tr%61ce=2", ""},
		{"/get-key?trace=1;licenseKey=evil", ""},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			g.up.last.Store(nil)
			a := g.doRaw(t, rawCall{target: tc.target, body: body})
			seen := g.up.last.Load()
			switch {
			case tc.query == "" && (a.status != 400 || a.code != 1 || seen != nil):
				t.Errorf("answer = %d %s (forwarded: %v), want 400 code 1, nothing forwarded", a.status, a.raw, seen != nil)
			case tc.query != "" && (a.status != 200 || seen == nil || seen.RawQuery != tc.query):
				t.Errorf("answer = %d %s, want 200 with the backend reading ?%s", a.status, a.raw, tc.query)
			}
		})
	}
}

// TestForwardedQueryNoFragment: a '#' in a request target is not a URI
// character (browsers never send one), but net/http keeps it in the query;
// forwarded, one backend would read it as the start of a fragment and
// drop what follows, another as part of the value. Such a query is refused
// with 400 code 1, never forwarded.
func TestForwardedQueryNoFragment(t *testing.T) {
	p, err := policy.Parse("t", []byte(`routes:
  - name: get
    method: POST
    path: /get-key
    auth: none
    params:
      licenseKey: {required: true}
    allow_query: [trace]
`))
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, withPolicy(p))
	body := `{"licenseKey":"k"}`
	for _, target := range []string{"/get-key?trace=1#licenseKey=evil", "/get-key?trace=1%23x#", "/get-key?#trace=1"} {
		t.Run(target, func(t *testing.T) {
			g.up.last.Store(nil)
			c, err := net.Dial("tcp", g.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "POST "+target+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+
				itoa(len(body))+"\r\n\r\n"+body); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if seen := g.up.last.Load(); resp.StatusCode != 400 || !strings.Contains(string(raw), `"code":1`) || seen != nil {
				t.Errorf("answer = %d %s (forwarded: %v), want 400 code 1, nothing forwarded", resp.StatusCode, raw, seen != nil)
			}
		})
	}
}
