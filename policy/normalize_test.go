package policy

import (
	"fmt"
	"strings"
	"testing"
)

// normCase is one upstream error answer and what keygate must do with it.
type normCase struct {
	name      string
	route     string // built-in route name; "" for a nil route
	status    int
	body      string
	truncated bool
	notJSON   bool // the upstream did not declare a JSON content type
	// want: pass through unchanged, or rewrite to wantStatus/wantCode/wantMsg
	pass       bool
	wantStatus int
	wantCode   int
	wantMsg    string
	wantKind   string
}

func contractBody(msg string, code int) string { return string(RenderBody(msg, code)) }

func passCase(name, route string, status int, body string) normCase {
	return normCase{name: name, route: route, status: status, body: body, pass: true, wantKind: RewriteNone}
}

func rewrite(name, route string, status int, body string, wantStatus, wantCode int, wantMsg, kind string) normCase {
	return normCase{name: name, route: route, status: status, body: body,
		wantStatus: wantStatus, wantCode: wantCode, wantMsg: wantMsg, wantKind: kind}
}

func runNormCases(t *testing.T, p *Policy, cases []normCase) {
	t.Helper()
	routes := map[string]*Route{}
	for _, r := range p.Routes {
		routes[r.Name] = r
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := routes[tc.route] // nil for ""
			pass, e, kind := r.Normalize(tc.status, []byte(tc.body), tc.truncated, !tc.notJSON)
			call := func() string { return fmt.Sprintf("%s, %d, %.60q", tc.route, tc.status, tc.body) }
			if pass != tc.pass || kind != tc.wantKind {
				t.Fatalf("Normalize(%s) = pass %v, kind %q; want pass %v, kind %q (error %v)", call(), pass, kind, tc.pass, tc.wantKind, e)
			}
			if pass {
				if e != nil {
					t.Errorf("Normalize(%s) = pass with error %v, want a nil error", call(), e)
				}
				return
			}
			if e == nil {
				t.Fatalf("Normalize(%s) = rewrite with a nil error", call())
			}
			if e.Status != tc.wantStatus || e.Code != tc.wantCode || e.Message != tc.wantMsg {
				t.Errorf("Normalize(%s) = %d code %d %q, want %d code %d %q", call(), e.Status, e.Code, e.Message, tc.wantStatus, tc.wantCode, tc.wantMsg)
			}
			if !IsContractStatus(e.Status) || e.Status == 200 {
				t.Errorf("Normalize(%s) status = %d, want a contract error status", call(), e.Status)
			}
		})
	}
}

// detectorOnly is the built-in policy without its response allowlists: the
// mapping of statuses, codes and shapes is tested apart from which messages
// Keymint documents (TestResponseMessages).
func detectorOnly() *Policy {
	p := Default()
	for _, r := range p.Routes {
		r.Response = nil
	}
	return p
}

func TestNormalize(t *testing.T) {
	long200 := strings.Repeat("x", 200)
	html := "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
	cases := []normCase{
		// Valid contract answers pass untouched.
		passCase("400 contract", "get", 400, contractBody("Invalid license key", 1)),
		passCase("401 contract", "get", 401, contractBody("Invalid access token", 1)),
		passCase("403 contract", "activate", 403, contractBody("License key is blocked", 2)),
		passCase("404 contract", "get", 404, contractBody("License key not found", 1)),
		passCase("409 contract", "activate", 409, contractBody("Maximum activations reached", 2)),
		passCase("429 contract", "get", 429, contractBody("Too many requests", 3)),
		passCase("500 contract", "get", 500, contractBody("Something went wrong", 1)),
		passCase("fields reversed and spaced", "get", 404, "{ \"code\" : 1 ,\n \"message\" : \"License key not found\" }\n"),
		passCase("200-byte message", "get", 400, contractBody(long200, 1)),
		passCase("nil route", "", 404, contractBody("License key not found", 1)),

		// The create route's override: an unknown customer is a refusal.
		passCase("create customer not found", "create", 404, contractBody("Customer not found", 2)),
		rewrite("create customer not found code 1", "create", 404, contractBody("Customer not found", 1), 404, 2, "Customer not found", RewriteCode),
		rewrite("create match ignores case", "create", 404, contractBody("CUSTOMER NOT FOUND: 9", 1), 404, 2, "CUSTOMER NOT FOUND: 9", RewriteCode),
		rewrite("create customer not found as error", "create", 404, `{"error":"Customer not found"}`, 404, 2, "Customer not found", RewriteBody),
		passCase("create other 404", "create", 404, contractBody("Product not found", 1)),
		rewrite("create other 404 code 2", "create", 404, contractBody("Product not found", 2), 404, 1, "Product not found", RewriteCode),
		rewrite("create 404 as text", "create", 404, "Customer not found", 404, 1, "Not found", RewriteBody),
		rewrite("create 409 code 1", "create", 409, contractBody("Key exists", 1), 409, 2, "Key exists", RewriteCode),
		passCase("get has no override", "get", 404, contractBody("Customer not found", 1)),
		rewrite("get customer not found code 2", "get", 404, contractBody("Customer not found", 2), 404, 1, "Customer not found", RewriteCode),

		// Right shape, wrong code for the status.
		rewrite("403 code 1", "activate", 403, contractBody("License expired", 1), 403, 2, "License expired", RewriteCode),
		rewrite("429 code 1", "get", 429, contractBody("Slow down", 1), 429, 3, "Slow down", RewriteCode),
		rewrite("400 code 0", "get", 400, contractBody("Bad input", 0), 400, 1, "Bad input", RewriteCode),
		rewrite("500 code 3", "get", 500, contractBody("Oops", 3), 500, 1, "Oops", RewriteCode),
		rewrite("code -0", "get", 400, `{"message":"Bad input","code":-0}`, 400, 1, "Bad input", RewriteCode),

		// Not the contract's shape.
		rewrite("HTML 404", "get", 404, "<html><body>Not Found</body></html>", 404, 1, "Not found", RewriteBody),
		rewrite("plain text 400", "get", 400, "productId is required", 400, 1, "Bad request", RewriteBody),
		rewrite("JSON error string", "activate", 403, `{"error":"License expired"}`, 403, 2, "License expired", RewriteBody),
		rewrite("JSON error object", "activate", 403, `{"error":{"message":"Key blocked","type":"blocked"}}`, 403, 2, "Key blocked", RewriteBody),
		rewrite("JSON detail", "get", 401, `{"detail":"Not authenticated"}`, 401, 1, "Not authenticated", RewriteBody),
		// "invalid_token" reads as an identifier (it has an _): the default message goes instead
		rewrite("JSON error_description", "get", 401, `{"error":"invalid_token","error_description":"Token revoked"}`, 401, 1, MsgInvalidToken, RewriteBody),
		rewrite("JSON message beats error", "get", 400, `{"error":"E_BAD","message":"Bad productId"}`, 400, 1, "Bad productId", RewriteBody),
		rewrite("extra field", "get", 400, `{"message":"Bad input","code":1,"requestId":"r-1"}`, 400, 1, "Bad input", RewriteBody),
		rewrite("empty message", "get", 404, `{"message":"","code":1}`, 404, 1, "Not found", RewriteBody),
		rewrite("null message", "get", 404, `{"message":null,"code":1}`, 404, 1, "Not found", RewriteBody),
		rewrite("no message", "get", 429, `{"code":3}`, 429, 3, MsgTooMany, RewriteBody),
		rewrite("string code", "get", 400, `{"message":"Bad input","code":"1"}`, 400, 1, "Bad input", RewriteBody),
		rewrite("float code", "get", 400, `{"message":"Bad input","code":1.0}`, 400, 1, "Bad input", RewriteBody),
		rewrite("huge code", "get", 400, `{"message":"Bad input","code":100}`, 400, 1, "Bad input", RewriteBody),
		rewrite("case-variant fields", "get", 400, `{"Message":"Bad input","Code":1}`, 400, 1, "Bad request", RewriteBody),
		rewrite("array", "get", 400, `[{"message":"Bad input","code":1}]`, 400, 1, "Bad request", RewriteBody),
		rewrite("empty body", "get", 403, "", 403, 2, MsgForbidden, RewriteBody),
		rewrite("trailing garbage", "get", 404, contractBody("Not here", 1)+"x", 404, 1, "Not found", RewriteBody),
		rewrite("trailing brace", "get", 404, contractBody("Not here", 1)+"}", 404, 1, "Not found", RewriteBody),
		rewrite("trailing bracket", "get", 404, contractBody("Not here", 1)+"]", 404, 1, "Not found", RewriteBody),
		// Clients that keep the first of two keys would see what keygate did not check.
		rewrite("duplicate message", "get", 400, `{"message":"<script>x</script>","code":1,"message":"Bad input"}`, 400, 1, "Bad input", RewriteBody),
		rewrite("duplicate code", "get", 400, `{"message":"Bad input","code":"one","code":1}`, 400, 1, "Bad input", RewriteBody),
		rewrite("invalid UTF-8", "get", 400, "{\"message\":\"Bad \xff input\",\"code\":1}", 400, 1, "Bad \ufffd input", RewriteBody),
		{name: "not declared JSON", route: "get", status: 404, body: contractBody("License key not found", 1), notJSON: true,
			wantStatus: 404, wantCode: 1, wantMsg: "Not found", wantKind: RewriteBody},
		{name: "truncated", route: "get", status: 404, body: contractBody("License key not found", 1), truncated: true,
			wantStatus: 404, wantCode: 1, wantMsg: "Not found", wantKind: RewriteBody},
		{name: "create truncated customer not found", route: "create", status: 404, body: contractBody("Customer not found", 1), truncated: true,
			wantStatus: 404, wantCode: 1, wantMsg: "Not found", wantKind: RewriteBody},

		// Statuses outside the contract.
		rewrite("301", "get", 301, `<a href="https://api.example.com/v2/get-key">Moved</a>`, 500, 1, MsgServerError, RewriteStatus),
		rewrite("302 empty", "get", 302, "", 500, 1, MsgServerError, RewriteStatus),
		rewrite("304", "get", 304, "", 500, 1, MsgServerError, RewriteStatus),
		rewrite("405", "get", 405, `{"message":"Method not allowed","code":1}`, 400, 1, "Method not allowed", RewriteStatus),
		rewrite("418", "get", 418, `{"message":"I'm a teapot","code":1}`, 400, 1, "I'm a teapot", RewriteStatus),
		rewrite("422", "create", 422, `{"error":"expiryDate is in the past"}`, 400, 1, "expiryDate is in the past", RewriteStatus),
		rewrite("502 HTML", "create", 502, html, 500, 1, MsgServerError, RewriteStatus),
		rewrite("503 contract", "get", 503, contractBody("Service unavailable", 1), 500, 1, "Service unavailable", RewriteStatus),
		rewrite("504 text", "get", 504, "upstream request timeout", 500, 1, MsgServerError, RewriteStatus),
		rewrite("599", "get", 599, "", 500, 1, MsgServerError, RewriteStatus),
		rewrite("600", "get", 600, "", 500, 1, MsgServerError, RewriteStatus),
	}

	// Messages that leak internals are replaced by the status's default.
	for _, l := range []struct{ name, msg string }{
		{"Java stack trace", "NullPointerException at com.keymint.api.Keys.get(Keys.java:42)"},
		{"Python traceback", "Traceback (most recent call last): File app.py"},
		{"Go panic", "panic: runtime error: index out of range [3] with length 3"},
		{"goroutine dump", "goroutine 17 [running]: main.handler()"},
		{"multi-line", "Error: boom\n    at Object.handler (/srv/app/index.js:10:5)"},
		{"stack word", "see stack for details"},
		{"IPv4", "connect ECONNREFUSED 10.0.3.7"},
		{"IPv4 and port", "connect ECONNREFUSED 10.0.3.7:5432"},
		{"IPv6 bracketed", "dial tcp [::1]:6379: connection refused"},
		{"IPv6 full", "no route to 2001:0db8:0000:0000:0000:ff00:0042:8329"},
		{"IPv6 compressed", "no route to 2001:db8::42"},
		{"IPv6 link-local", "upstream fe80::1 unreachable"},
		{"IPv6 loopback", "upstream ::1 unreachable"},
		{"host and port", "db-primary.internal:5432 timed out"},
		{"localhost", "could not reach localhost"},
		{"URL", "see https://status.keymint.dev/incidents/1"},
		{"file URL", "file:///etc/keymint/config.yaml missing"},
		{"SQL state", "SQLSTATE[23000]: Integrity constraint violation"},
		{"errno", "write failed, errno 28"},
		{"at line", "syntax error at line 3"},
		{"exception", "UnhandledPromiseRejection exception"},
		{"markup", "<b>License</b> expired"},
		{"braces", "License {id} expired"},
		{"tab", "License\texpired"},
		{"DEL", "License expired\x7f"},
		{"201 bytes", strings.Repeat("x", 201)},
		{"101 two-byte runes", strings.Repeat("é", 101)},
	} {
		cases = append(cases, rewrite("leak: "+l.name, "get", 500, contractBody(l.msg, 1), 500, 1, MsgServerError, RewriteLeak))
	}
	runNormCases(t, detectorOnly(), cases)
}

// TestNormalizeRuleMessage checks an error rule that names its own message
// and one for a status outside the contract.
func TestNormalizeRuleMessage(t *testing.T) {
	doc := "routes:\n  - name: a\n    method: POST\n    path: /a\n    errors:\n      - {status: 502, code: 1, message: \"Licensing is down for maintenance\"}\n      - {status: 403, match: blocked, code: 2, message: \"This key is blocked\"}\n      - {status: 403, code: 1}\n"
	p, err := Parse("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	runNormCases(t, p, []normCase{
		rewrite("502 rule", "a", 502, "<html>Bad Gateway</html>", 500, 1, "Licensing is down for maintenance", RewriteStatus),
		rewrite("403 rule message", "a", 403, contractBody("Key ABC is blocked", 2), 403, 2, "This key is blocked", RewriteBody),
		rewrite("403 rule message from text", "a", 403, `{"error":"blocked"}`, 403, 2, "This key is blocked", RewriteBody),
		passCase("403 fallback rule", "a", 403, contractBody("Not yours", 1)),
		rewrite("403 fallback rule code 2", "a", 403, contractBody("Not yours", 2), 403, 1, "Not yours", RewriteCode),
		passCase("500 no rule", "a", 500, contractBody("Oops", 1)),
	})
}

func TestContractStatus(t *testing.T) {
	tests := []struct{ in, want int }{
		{300, 500}, {301, 500}, {302, 500}, {307, 500}, {400, 400}, {401, 401}, {402, 400}, {403, 403},
		{404, 404}, {405, 400}, {409, 409}, {410, 400}, {418, 400}, {422, 400}, {429, 429}, {499, 400},
		{500, 500}, {501, 500}, {502, 500}, {503, 500}, {504, 500}, {599, 500}, {999, 500},
	}
	for _, tt := range tests {
		if got := ContractStatus(tt.in); got != tt.want {
			t.Errorf("ContractStatus(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestCodeOfContract(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{contractBody("x", 2), 2},
		{`{"code":3,"message":"x"}`, 3},
		{`not json`, 0},
	}
	for _, tt := range tests {
		if got := CodeOfContract([]byte(tt.body)); got != tt.want {
			t.Errorf("CodeOfContract(%s) = %d, want %d", tt.body, got, tt.want)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	r := Default().Match("POST", "/create-key")
	bodies := [][]byte{[]byte(contractBody("Customer not found", 2)), []byte(`{"error":"Customer not found"}`), []byte("<html>oops</html>")}
	b.ReportAllocs()
	for b.Loop() {
		for _, body := range bodies {
			r.Normalize(404, body, false, true)
		}
	}
}

func TestSafeMessageHidesPaths(t *testing.T) {
	// Identifiers with _ and dotted names are refused too: the detector errs
	// on the safe side (a constraint name, a host).
	for _, m := range []string{"ENOENT: /srv/app/config.json", "TypeError at index.js:42", "failed in handler.py", "open /etc/keygate/x",
		"DB_INSERT_FAIL", "Use v1.2 or later"} {
		if safeMessage(m, nil) {
			t.Errorf("safeMessage(%q) = true, want false: it shows a file path", m)
		}
	}
	for _, m := range []string{"License key not found", "Activation limit reached", "Use version 2 or later"} {
		if !safeMessage(m, nil) {
			t.Errorf("safeMessage(%q) = false, want true", m)
		}
	}
}
