package backend

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// step is one request of a scenario, with the answer and the key's
// activation count expected right after it.
type step struct {
	path            string
	body            string
	wantStatus      int
	wantMessage     string
	key             string // key whose activations are checked after the step
	wantActivations int
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	_, srv := newServer(t)
	for i, s := range steps {
		got := post(t, srv, s.path, s.body)
		var reply struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal([]byte(got.body), &reply)
		if got.status != s.wantStatus || reply.Message != s.wantMessage {
			t.Errorf("step %d: POST %s(%s) = %d %q, want %d %q", i, s.path, s.body, got.status, reply.Message, s.wantStatus, s.wantMessage)
		}
		if n := activations(t, srv, s.key); n != s.wantActivations {
			t.Errorf("step %d: activations(%s) = %d, want %d", i, s.key, n, s.wantActivations)
		}
	}
}

func TestScenarios(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"reactivation does not consume a slot", []step{
			{"/activate-key", keyBody(LicenseKey, "host-a"), 200, "License valid", LicenseKey, 1},
			{"/activate-key", keyBody(LicenseKey, "host-a"), 200, "License valid", LicenseKey, 1},
			{"/activate-key", keyBody(LicenseKey, "host-b"), 200, "License valid", LicenseKey, 2},
			{"/activate-key", keyBody(LicenseKey, "host-c"), 200, "License valid", LicenseKey, 3},
			{"/activate-key", keyBody(LicenseKey, "host-a"), 200, "License valid", LicenseKey, 3},
			{"/activate-key", keyBody(LicenseKey, "host-d"), 403, "Activation limit reached", LicenseKey, 3},
			{"/deactivate-key", keyBody(LicenseKey, "host-b"), 200, "Device deactivated", LicenseKey, 2},
			{"/deactivate-key", keyBody(LicenseKey, "host-b"), 404, "Device not found", LicenseKey, 2},
			{"/activate-key", keyBody(LicenseKey, "host-d"), 200, "License valid", LicenseKey, 3},
			{"/deactivate-key", keyBody(LicenseKey), 200, "All devices deactivated", LicenseKey, 0},
			{"/activate-key", keyBody(LicenseKey, "host-e"), 200, "License valid", LicenseKey, 1},
		}},
		{"full key accepts its own host only", []step{
			{"/activate-key", keyBody(FullKey, FullKeyHost), 200, "License valid", FullKey, 1},
			{"/activate-key", keyBody(FullKey, "other-host"), 403, "Activation limit reached", FullKey, 1},
			{"/deactivate-key", keyBody(FullKey, FullKeyHost), 200, "Device deactivated", FullKey, 0},
			{"/activate-key", keyBody(FullKey, "other-host"), 200, "License valid", FullKey, 1},
		}},
		{"block and unblock", []step{
			{"/activate-key", keyBody(LicenseKey, "host-a"), 200, "License valid", LicenseKey, 1},
			{"/block-key", keyBody(LicenseKey), 200, "License key blocked", LicenseKey, 1},
			{"/activate-key", keyBody(LicenseKey, "host-a"), 403, "License is blocked", LicenseKey, 1},
			{"/activate-key", keyBody(LicenseKey, "host-b"), 403, "License is blocked", LicenseKey, 1},
			{"/unblock-key", keyBody(LicenseKey), 200, "License key unblocked", LicenseKey, 1},
			{"/activate-key", keyBody(LicenseKey, "host-b"), 200, "License valid", LicenseKey, 2},
		}},
		{"seeded blocked key unblocks", []step{
			{"/unblock-key", keyBody(BlockedKey), 200, "License key unblocked", BlockedKey, 0},
			{"/activate-key", keyBody(BlockedKey, "h"), 200, "License valid", BlockedKey, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.steps) })
	}
}

// TestCreateKey creates keys, then reads them back and activates them.
func TestCreateKey(t *testing.T) {
	future := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	tests := []struct {
		name         string
		body         string
		wantMax      float64
		wantExpiry   any // nil for null
		wantCustomer map[string]any
		wantActivate int // status of a first activation
	}{
		{"defaults", `{` + productField + `}`, 1, nil, nil, 200},
		{"numeric string", `{` + productField + `,"maxActivations":"2"}`, 2, nil, nil, 200},
		{"number", `{` + productField + `,"maxActivations":5}`, 5, nil, nil, 200},
		{"null maxActivations", `{` + productField + `,"maxActivations":null}`, 1, nil, nil, 200},
		{"future expiry", `{` + productField + `,"expiryDate":"` + future + `"}`, 1, future, nil, 200},
		{"past expiry", `{` + productField + `,"expiryDate":"` + past + `"}`, 1, past, nil, 403},
		{"existing customer", `{` + productField + `,"customerId":"` + CustomerID + `"}`, 1, nil,
			map[string]any{"id": CustomerID, "name": "Ada Lovelace", "email": "ada@example.com"}, 200},
		{"new customer", `{` + productField + `,"newCustomer":{"name":"Grace Hopper","email":"grace@example.com"}}`, 1, nil,
			map[string]any{"name": "Grace Hopper", "email": "grace@example.com"}, 200},
		{"new customer without email", `{` + productField + `,"newCustomer":{"name":"Anon"}}`, 1, nil,
			map[string]any{"name": "Anon", "email": ""}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newServer(t)
			got := post(t, srv, "/create-key", tt.body)
			var created struct {
				Message string `json:"message"`
				Code    int    `json:"code"`
				Key     string `json:"key"`
			}
			if err := json.Unmarshal([]byte(got.body), &created); err != nil || got.status != http.StatusOK {
				t.Fatalf("POST /create-key(%s) = %d %s, want 200 with a key", tt.body, got.status, got.body)
			}
			if created.Message != "License key created" || created.Code != 0 || len(created.Key) < 30 {
				t.Errorf("POST /create-key(%s) = %s, want message \"License key created\", code 0, a key of 30+ chars", tt.body, got.body)
			}
			if again := post(t, srv, "/create-key", `{`+productField+`}`); mustJSON(t, again.body).(map[string]any)["key"] == created.Key {
				t.Errorf("second POST /create-key key = %s, want a different key", created.Key)
			}

			data := mustJSON(t, post(t, srv, "/get-key", keyBody(created.Key)).body).(map[string]any)["data"].(map[string]any)
			if c, ok := data["customer"].(map[string]any); ok && tt.wantCustomer != nil && tt.wantCustomer["id"] == nil {
				delete(c, "id") // a generated id
			}
			gotFields := map[string]any{"maxActivations": data["maxActivations"], "expiryDate": data["expiryDate"], "customer": data["customer"]}
			wantFields := map[string]any{"maxActivations": tt.wantMax, "expiryDate": tt.wantExpiry, "customer": any(tt.wantCustomer)}
			if tt.wantCustomer == nil {
				wantFields["customer"] = nil
			}
			if diff := cmp.Diff(wantFields, gotFields); diff != "" {
				t.Errorf("POST /get-key(created key) mismatch (-want +got):\n%s", diff)
			}

			if act := post(t, srv, "/activate-key", keyBody(created.Key, "h")); act.status != tt.wantActivate {
				t.Errorf("POST /activate-key(created key) status = %d, want %d (body %s)", act.status, tt.wantActivate, act.body)
			}
		})
	}
}

// TestCreateKeyNewCustomerEmailTaken checks that a customer created by
// /create-key reserves its email for later calls.
func TestCreateKeyNewCustomerEmailTaken(t *testing.T) {
	_, srv := newServer(t)
	body := `{` + productField + `,"newCustomer":{"name":"Grace Hopper","email":"grace@example.com"}}`
	if got := post(t, srv, "/create-key", body); got.status != http.StatusOK {
		t.Fatalf("first POST /create-key(%s) status = %d, want 200 (body %s)", body, got.status, got.body)
	}
	got := post(t, srv, "/create-key", body)
	checkJSON(t, "second POST /create-key", got, http.StatusConflict, `{"message":"Customer with this email already exists","code":2}`)
}

// TestCalls checks that every request is counted by path, whatever its fate.
func TestCalls(t *testing.T) {
	b, srv := newServer(t)
	post(t, srv, "/activate-key", keyBody(LicenseKey, "h"))
	post(t, srv, "/activate-key", `{`)
	post(t, srv, "/activate-key", keyBody(HTMLErrorKey, "h"))
	do(t, srv, http.MethodGet, "/get-key", "")
	post(t, srv, "/nope", `{}`)
	for path, want := range map[string]int{"/activate-key": 3, "/get-key": 1, "/nope": 1, "/block-key": 0} {
		if got := b.Calls(path); got != want {
			t.Errorf("Calls(%q) = %d, want %d", path, got, want)
		}
	}
}
