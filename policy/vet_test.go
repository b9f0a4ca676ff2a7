package policy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestVetSuccess(t *testing.T) {
	const key = "KEY-TEST-0000-0000-0000-0001"
	secrets := []string{"tok-global-secret", key}
	p := Default()
	free := detectorOnly()
	tests := []struct {
		name    string
		route   *Route
		body    string
		want    string // "" when the body must be refused
		removed []Removed
	}{
		{"activate as Keymint sends it", p.Match("POST", "/activate-key"),
			`{"message":"License valid","licenseeName":"Ada Lovelace","code":0}`,
			`{"message":"License valid","code":0,"licenseeName":"Ada Lovelace"}`, nil},
		{"get as Keymint sends it", p.Match("POST", "/get-key"),
			`{"message":"License key fetched","code":0,"data":{"licenseKey":"` + key + `","productId":"prod_1","activated":true,` +
				`"activations":1,"maxActivations":3,"expiryDate":null,"blocked":false,` +
				`"devices":[{"hostId":"host-a","deviceTag":"laptop","activationTime":"2026-01-02T03:04:05Z"}],` +
				`"customer":{"id":"cust_1","name":"Ada","email":"ada@example.com"}}}`,
			`{"message":"License key fetched","code":0,"data":{"licenseKey":"` + key + `","productId":"prod_1","activated":true,` +
				`"activations":1,"maxActivations":3,"expiryDate":null,"blocked":false,` +
				`"devices":[{"hostId":"host-a","deviceTag":"laptop","activationTime":"2026-01-02T03:04:05Z"}],` +
				`"customer":{"id":"cust_1","name":"Ada","email":"ada@example.com"}}}`, nil},
		{"planted secrets in listed and unlisted fields", p.Match("POST", "/activate-key"),
			`{"message":"License valid","code":0,"licenseeName":"postgres://keymint:hunter2@db-primary.prod.internal/keys",` +
				`"db":"postgres://keymint:hunter2@db-primary/keys","debug":{"host":"10.0.3.7"}}`,
			`{"message":"License valid","code":0}`,
			[]Removed{{"licenseeName", LeakURL}, {"db", "unlisted"}, {"debug", "unlisted"}}},
		{"stack trace as the message", p.Match("POST", "/activate-key"),
			`{"message":"Error: boom\n    at Object.<anonymous> (/srv/app/index.js:3:9)","code":0}`,
			`{"message":"OK","code":0}`, []Removed{{"message", "message"}}},
		{"caller's key echoed in a text field", p.Match("POST", "/activate-key"),
			`{"message":"License valid","code":0,"licenseeName":"` + key + `"}`,
			`{"message":"License valid","code":0}`, []Removed{{"licenseeName", LeakEcho}}},
		{"token in an id field", p.Match("POST", "/create-key"),
			`{"message":"License key created","code":0,"key":"tok-global-secret"}`,
			`{"message":"License key created","code":0}`, []Removed{{"key", LeakEcho}}},
		{"wrong types removed", p.Match("POST", "/get-key"),
			`{"data":{"activations":"1","blocked":"no","expiryDate":"tomorrow","devices":[1,{"hostId":"/srv/app"}]}}`,
			`{"message":"OK","code":0,"data":{"devices":[{}]}}`,
			[]Removed{{"data.activations", "type"}, {"data.blocked", "type"}, {"data.expiryDate", "type"},
				{"data.devices[0]", "type"}, {"data.devices[1].hostId", "type"}}},
		{"device ids may be fingerprints", p.Match("POST", "/get-key"),
			`{"data":{"devices":[{"hostId":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","deviceTag":"9f86d081884c7d659a2feaa0"}]}}`,
			`{"message":"OK","code":0,"data":{"devices":[{"hostId":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]}}`,
			[]Removed{{"data.devices[0].deviceTag", LeakSecret}}},
		{"detector only: clean fields kept in order", free.Match("POST", "/activate-key"),
			`{"b":1,"a":"x","message":"Done","code":0,"n":{"k":[true,null,"y"]}}`,
			`{"message":"Done","code":0,"b":1,"a":"x","n":{"k":[true,null,"y"]}}`, nil},
		{"detector only: leaks removed at any depth", free.Match("POST", "/activate-key"),
			`{"ok":"yes","trace":"at db.query (/srv/db.js:1)","n":{"ip":"10.1.2.3","k":["fine","C:\\srv"]},"db.internal":1}`,
			`{"message":"OK","code":0,"ok":"yes","n":{"k":["fine"]}}`,
			[]Removed{{"trace", LeakHost}, {"n.ip", LeakIP}, {"n.k[1]", LeakPath}, {"db.internal", LeakHost}}},
		{"nil route: detector only", nil, `{"x":"1"}`, `{"message":"OK","code":0,"x":"1"}`, nil},
		{"quotes escaped", free.Match("POST", "/activate-key"), `{"x":"say \"hi\""}`, `{"message":"OK","code":0,"x":"say \"hi\""}`, nil},
		{"html escapes kept readable", free.Match("POST", "/activate-key"), `{"x":"a & b"}`, `{"message":"OK","code":0,"x":"a & b"}`, nil},
		{"code not 0", p.Match("POST", "/get-key"), `{"message":"x","code":2}`, "", nil},
		{"code as string", p.Match("POST", "/get-key"), `{"code":"0"}`, "", nil},
		{"code 0.0", p.Match("POST", "/get-key"), `{"code":0.0}`, "", nil},
		{"message not a string", p.Match("POST", "/get-key"), `{"message":1}`, "", nil},
		{"duplicate key", p.Match("POST", "/get-key"), `{"data":{},"data":{}}`, "", nil},
		{"duplicate nested key", free.Match("POST", "/get-key"), `{"a":{"b":1,"b":2}}`, "", nil},
		{"duplicate message", p.Match("POST", "/get-key"), `{"message":"OK","message":"x"}`, "", nil},
		{"array", p.Match("POST", "/get-key"), `[1]`, "", nil},
		{"html", p.Match("POST", "/get-key"), `<html></html>`, "", nil},
		{"trailing data", p.Match("POST", "/get-key"), `{} {}`, "", nil},
		{"invalid utf-8", p.Match("POST", "/get-key"), "{\"x\":\"\xff\"}", "", nil},
		{"too deep", free.Match("POST", "/get-key"), `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, removed, ok := tc.route.VetSuccess([]byte(tc.body), secrets)
			if tc.want == "" {
				if ok {
					t.Fatalf("VetSuccess(%.80q) = %s, ok; want refused", tc.body, out)
				}
				return
			}
			if !ok || string(out) != tc.want {
				t.Fatalf("VetSuccess(%.80q) = %s, %v; want %s", tc.body, out, ok, tc.want)
			}
			if diff := cmp.Diff(tc.removed, removed); diff != "" {
				t.Errorf("VetSuccess(%.80q) removed (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

// TestErrorRulePattern: the built-in create route's override for a missing
// customer matches what legacy backends say around ids, and nothing else.
func TestErrorRulePattern(t *testing.T) {
	create := Default().Match("POST", "/create-key")
	tests := []struct {
		msg  string
		code int
	}{
		{"Customer not found", 2},
		{"Customer 'cus_9' not found", 2},
		{"customer cus_9 does not exist", 2},
		{"No customer with id 42", 2},
		{"Unknown customer 42", 2},
		{"Customers not found", 2},
		{"CUSTOMER NOT FOUND", 2},
		{"Product not found", 1},
		{"License key not found", 1},
		{"Customer found but product not found", 2}, // errs towards the documented meaning
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			body := []byte(`{"message":` + quote(tc.msg) + `,"code":1}`)
			pass, e, _ := create.Normalize(404, body, false, true)
			code := CodeOfContract(body)
			if !pass {
				code = e.Code
			}
			if code != tc.code {
				t.Errorf("Normalize(404, %q) = code %d, want code %d", tc.msg, code, tc.code)
			}
		})
	}
}

func quote(s string) string {
	return string(RenderBody(s, 0)[len(`{"message":`) : len(`{"message":`)+len(s)+2])
}

func TestResponseValidation(t *testing.T) {
	base := "routes:\n  - name: r\n    method: POST\n    path: /r\n"
	tests := []struct {
		name, doc, want string
	}{
		{"unknown type", base + "    response:\n      fields:\n        a: {type: blob}\n", `type "blob" must be one of`},
		{"object without fields", base + "    response:\n      fields:\n        a: {type: object}\n", "object needs fields"},
		{"fields on text", base + "    response:\n      fields:\n        a: {type: text, fields: {b: {}}}\n", "fields apply to object and list only"},
		{"contract field", base + "    response:\n      fields:\n        code: {type: number}\n", "contract's own"},
		{"refused header", base + "    response:\n      headers: [set-cookie]\n", "Set-Cookie may not be passed"},
		{"bad header", base + "    response:\n      headers: [\"a b\"]\n", "must be a header name"},
		{"leaky message", base + "    response:\n      messages: [\"db.internal down\"]\n", "looks like internal detail"},
		{"bad messages shape", base + "    response:\n      messages: {a: b}\n", "messages in response must be a list"},
		{"match and pattern", base + "    errors:\n      - {status: 404, code: 1, match: a, pattern: b}\n", "not both"},
		{"bad pattern", base + "    errors:\n      - {status: 404, code: 1, pattern: \"(\"}\n", "error rule pattern"},
		{"unknown response key", base + "    response:\n      field: {}\n", `unknown field "field"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%s) = %v, want an error containing %q", tc.name, err, tc.want)
			}
		})
	}
	ok := base + "    response:\n      headers: [x-keymint-version]\n      messages: [[\"A\", \"B\"], \"C\"]\n" +
		"      fields:\n        d: {type: list, fields: {e: {type: email}}}\n"
	p, err := Parse("p.yaml", []byte(ok))
	if err != nil {
		t.Fatalf("Parse(valid response) = %v", err)
	}
	r := p.Routes[0]
	if got, want := r.AnswerHeaders(), []string{"X-Keymint-Version"}; !cmp.Equal(got, want) {
		t.Errorf("AnswerHeaders() = %v, want %v", got, want)
	}
	if got, want := []string(r.Response.Messages), []string{"A", "B", "C"}; !cmp.Equal(got, want) {
		t.Errorf("Messages = %v, want %v", got, want)
	}
}

// FuzzVetSuccess: whatever an upstream sends as a success, what VetSuccess
// lets through is one JSON object with a clean message and code 0, whose
// every name and string passes the leak detector, and which VetSuccess
// passes unchanged (a replay or a second keygate changes nothing).
func FuzzVetSuccess(f *testing.F) {
	secrets := []string{"tok-global-secret", "KEY-TEST-0000-0000-0000-0001"}
	for _, s := range []string{
		`{"message":"License valid","licenseeName":"Ada","code":0}`,
		`{"data":{"devices":[{"hostId":"h","activationTime":"2026-01-02T03:04:05Z"}],"customer":{"email":"a@b.co"}}}`,
		`{"a":"postgres://u:p@db/x","b":["10.0.0.1",{"c":"\u0041KIAIOSFODNN7EXAMPLE"}],"d":1e3,"e":null}`,
		`{"message":"say \"hi\"","code":0,"x":"tab\tnot\u2028"}`,
		`{"a":1,"a":2}`, `[1]`, `{"code":0.0}`, "{\"x\":\"\xff\"}",
	} {
		f.Add(s)
	}
	p := Default()
	routes := []*Route{nil, p.Match("POST", "/get-key"), p.Match("POST", "/activate-key")}
	for _, s := range []string{`{"a":1,}`, `{"a":-01}`, `{"a":1e+}`, `{"a":"\u12"}`, `{"a":[1 2]}`, `{"a":tru}`, `{} {}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		// the reader replaced json.Valid: it must accept what encoding/json reads, and nothing else
		if got, want := readerAccepts([]byte(body)), readable([]byte(body)); got != want {
			t.Fatalf("reader accepts %q = %v, want %v (encoding/json)", body, got, want)
		}
		for _, r := range routes {
			out, _, ok := r.VetSuccess([]byte(body), secrets)
			if !ok {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil || !utf8.Valid(out) {
				t.Fatalf("VetSuccess(%q) = %q: not a JSON object: %v", body, out, err)
			}
			if msg, _ := m["message"].(string); Leak(msg, secrets...) != "" || m["code"] != float64(0) {
				t.Fatalf("VetSuccess(%q) = %q: message or code not the contract's", body, out)
			}
			walkStrings(m, func(s string) {
				if r == nil && Leak(s, secrets...) != "" {
					t.Fatalf("VetSuccess(%q) = %q passes %q, which leaks %s", body, out, s, Leak(s, secrets...))
				}
				if strings.Contains(s, secrets[0]) {
					t.Fatalf("VetSuccess(%q) = %q repeats the token", body, out)
				}
			})
			again, removed, ok := r.VetSuccess(out, secrets)
			if !ok || string(again) != string(out) || len(removed) != 0 {
				t.Fatalf("VetSuccess(VetSuccess(%q)) = %q, %v, %v; want %q unchanged", body, again, removed, ok, out)
			}
		}
	})
}

func walkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case map[string]any:
		for k, x := range v {
			fn(k)
			walkStrings(x, fn)
		}
	case []any:
		for _, x := range v {
			walkStrings(x, fn)
		}
	}
}

// TestResponseMessages: the built-in policy lets Keymint's documented
// messages through and no other, on errors and successes alike.
func TestResponseMessages(t *testing.T) {
	get := Default().Match("POST", "/get-key")
	tests := []struct {
		status int
		msg    string
		want   string
	}{
		{404, "License key not found", "License key not found"},
		{404, "Key gone", MsgNotFound},
		{403, "License is blocked", "License is blocked"},
		{403, "Blocked by admin", MsgForbidden},
		{200, "License key fetched", "License key fetched"},
		{200, "Fetched for admin", MsgOK},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			code := DefaultCode(tc.status)
			if tc.status == 403 {
				code = 2
			}
			body := RenderBody(tc.msg, code)
			got := ""
			if tc.status == 200 {
				out, _, ok := get.VetSuccess(body, nil)
				if !ok {
					t.Fatalf("VetSuccess(%s) refused", body)
				}
				got = string(out[len(`{"message":"`) : bytes.IndexByte(out[len(`{"message":"`):], '"')+len(`{"message":"`)])
			} else if pass, e, _ := get.Normalize(tc.status, body, false, true); pass {
				got = tc.msg
			} else {
				got = e.Message
			}
			if got != tc.want {
				t.Errorf("message of %d %q = %q, want %q", tc.status, tc.msg, got, tc.want)
			}
		})
	}
}
