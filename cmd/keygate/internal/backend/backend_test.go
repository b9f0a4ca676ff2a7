package backend

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// productField is the seeded product as a JSON member, for building bodies.
const productField = `"productId":"` + ProductID + `"`

// TestContractAnswers sends one request to a fresh backend per case and
// checks the exact JSON answer.
func TestContractAnswers(t *testing.T) {
	tests := []struct {
		name       string
		method     string // POST when empty
		path       string
		body       string
		wantStatus int
		wantBody   string
	}{
		// Shared checks.
		{"unknown route", "", "/nope", keyBody(LicenseKey), 404, `{"message":"Not found","code":1}`},
		{"root", "", "/", `{}`, 404, `{"message":"Not found","code":1}`},
		{"GET on a route", http.MethodGet, "/get-key", "", 404, `{"message":"Not found","code":1}`},
		{"PUT on a route", http.MethodPut, "/activate-key", keyBody(LicenseKey, "h"), 404, `{"message":"Not found","code":1}`},
		{"syntax error", "", "/get-key", `{`, 400, `{"message":"Invalid JSON","code":1}`},
		{"empty body", "", "/activate-key", ``, 400, `{"message":"Invalid JSON","code":1}`},
		{"array body", "", "/get-key", `[]`, 400, `{"message":"Invalid JSON","code":1}`},
		{"mistyped field", "", "/get-key", `{"productId":5}`, 400, `{"message":"Invalid JSON","code":1}`},
		{"trailing garbage", "", "/block-key", keyBody(LicenseKey) + `x`, 400, `{"message":"Invalid JSON","code":1}`},

		// /get-key errors; successes are in TestGetKey.
		{"get-key missing licenseKey", "", "/get-key", `{` + productField + `}`, 400, `{"message":"Missing required params","code":1}`},
		{"get-key missing productId", "", "/get-key", `{"licenseKey":"` + LicenseKey + `"}`, 400, `{"message":"Missing required params","code":1}`},
		{"get-key unknown product", "", "/get-key", `{"productId":"prod_nope","licenseKey":"` + LicenseKey + `"}`, 404, `{"message":"Product not found","code":1}`},
		{"get-key unknown key", "", "/get-key", keyBody("DEMO-NOPE-0000-0000-0000-0001"), 404, `{"message":"License key not found","code":1}`},

		// /activate-key.
		{"activate valid", "", "/activate-key", keyBody(LicenseKey, "host-a"), 200, `{"message":"License valid","licenseeName":"Ada Lovelace","code":0}`},
		{"activate with deviceTag", "", "/activate-key", `{` + productField + `,"licenseKey":"` + LicenseKey + `","hostId":"h","deviceTag":"laptop"}`, 200, `{"message":"License valid","licenseeName":"Ada Lovelace","code":0}`},
		{"activate ownerless key", "", "/activate-key", keyBody(FullKey, FullKeyHost), 200, `{"message":"License valid","licenseeName":"","code":0}`},
		{"activate missing hostId", "", "/activate-key", keyBody(LicenseKey), 400, `{"message":"Missing required params","code":1}`},
		{"activate missing licenseKey", "", "/activate-key", `{` + productField + `,"hostId":"h"}`, 400, `{"message":"Missing required params","code":1}`},
		{"activate unknown product", "", "/activate-key", `{"productId":"prod_nope","licenseKey":"` + LicenseKey + `","hostId":"h"}`, 404, `{"message":"Product not found","code":1}`},
		{"activate unknown key", "", "/activate-key", keyBody("DEMO-NOPE-0000-0000-0000-0001", "h"), 404, `{"message":"License key not found","code":1}`},
		{"activate expired", "", "/activate-key", keyBody(ExpiredKey, "h"), 403, `{"message":"License has expired","code":2}`},
		{"activate blocked", "", "/activate-key", keyBody(BlockedKey, "h"), 403, `{"message":"License is blocked","code":2}`},
		{"activate inactive", "", "/activate-key", keyBody(InactiveKey, "h"), 403, `{"message":"License is not active","code":2}`},
		{"activate full", "", "/activate-key", keyBody(FullKey, "new-host"), 403, `{"message":"Activation limit reached","code":2}`},

		// /deactivate-key.
		{"deactivate one", "", "/deactivate-key", keyBody(FullKey, FullKeyHost), 200, `{"message":"Device deactivated","code":0}`},
		{"deactivate all", "", "/deactivate-key", keyBody(FullKey), 200, `{"message":"All devices deactivated","code":0}`},
		{"deactivate all when none", "", "/deactivate-key", keyBody(LicenseKey), 200, `{"message":"All devices deactivated","code":0}`},
		{"deactivate absent device", "", "/deactivate-key", keyBody(LicenseKey, "nope"), 404, `{"message":"Device not found","code":1}`},
		{"deactivate unknown key", "", "/deactivate-key", keyBody("DEMO-NOPE-0000-0000-0000-0001"), 404, `{"message":"License key not found","code":1}`},
		{"deactivate unknown product", "", "/deactivate-key", `{"productId":"prod_nope","licenseKey":"` + FullKey + `"}`, 404, `{"message":"Product not found","code":1}`},
		{"deactivate missing licenseKey", "", "/deactivate-key", `{` + productField + `}`, 400, `{"message":"Missing required params","code":1}`},

		// /create-key errors; successes are in TestCreateKey.
		{"create missing productId", "", "/create-key", `{}`, 400, `{"message":"Missing required params","code":1}`},
		{"create newCustomer without name", "", "/create-key", `{` + productField + `,"newCustomer":{"email":"x@example.com"}}`, 400, `{"message":"Missing required params","code":1}`},
		{"create unknown product", "", "/create-key", `{"productId":"prod_nope"}`, 404, `{"message":"Product not found","code":1}`},
		{"create unknown customer", "", "/create-key", `{` + productField + `,"customerId":"cust_nope"}`, 404, `{"message":"Customer not found","code":2}`},
		{"create duplicate email", "", "/create-key", `{` + productField + `,"newCustomer":{"name":"Ada","email":"ada@example.com"}}`, 409, `{"message":"Customer with this email already exists","code":2}`},
		{"create duplicate email other case", "", "/create-key", `{` + productField + `,"newCustomer":{"name":"Ada","email":"ADA@example.com"}}`, 409, `{"message":"Customer with this email already exists","code":2}`},
		{"create non-numeric maxActivations", "", "/create-key", `{` + productField + `,"maxActivations":"many"}`, 400, `{"message":"Invalid maxActivations","code":1}`},
		{"create zero maxActivations", "", "/create-key", `{` + productField + `,"maxActivations":"0"}`, 400, `{"message":"Invalid maxActivations","code":1}`},
		{"create boolean maxActivations", "", "/create-key", `{` + productField + `,"maxActivations":true}`, 400, `{"message":"Invalid maxActivations","code":1}`},
		{"create bad expiryDate", "", "/create-key", `{` + productField + `,"expiryDate":"next tuesday"}`, 400, `{"message":"Invalid expiryDate","code":1}`},

		// /block-key and /unblock-key.
		{"block", "", "/block-key", keyBody(LicenseKey), 200, `{"message":"License key blocked","code":0}`},
		{"block blocked", "", "/block-key", keyBody(BlockedKey), 200, `{"message":"License key blocked","code":0}`},
		{"unblock", "", "/unblock-key", keyBody(BlockedKey), 200, `{"message":"License key unblocked","code":0}`},
		{"block unknown key", "", "/block-key", keyBody("DEMO-NOPE-0000-0000-0000-0001"), 404, `{"message":"License key not found","code":1}`},
		{"unblock unknown product", "", "/unblock-key", `{"productId":"prod_nope","licenseKey":"` + BlockedKey + `"}`, 404, `{"message":"Product not found","code":1}`},
		{"block missing licenseKey", "", "/block-key", `{` + productField + `}`, 400, `{"message":"Missing required params","code":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newServer(t)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			got := do(t, srv, method, tt.path, tt.body)
			checkJSON(t, method+" "+tt.path+"("+tt.body+")", got, tt.wantStatus, tt.wantBody)
		})
	}
}

// TestGetKey checks the /get-key data of each seeded key. Times depend on
// when New ran, so they are checked apart from the rest of the body.
func TestGetKey(t *testing.T) {
	tests := []struct {
		key        string
		wantExpiry bool // expiryDate is a time, not null
		wantDevice bool // devices[0].activationTime is a time
		wantBody   string
	}{
		{LicenseKey, false, false, `{"message":"License key fetched","code":0,"data":{
			"licenseKey":"` + LicenseKey + `","productId":"` + ProductID + `","activated":false,"activations":0,
			"maxActivations":3,"expiryDate":null,"blocked":false,"devices":[],
			"customer":{"id":"` + CustomerID + `","name":"Ada Lovelace","email":"ada@example.com"}}}`},
		{FullKey, false, true, `{"message":"License key fetched","code":0,"data":{
			"licenseKey":"` + FullKey + `","productId":"` + ProductID + `","activated":true,"activations":1,
			"maxActivations":1,"expiryDate":null,"blocked":false,
			"devices":[{"hostId":"existing-host","deviceTag":"existing","activationTime":"T"}],"customer":null}}`},
		{ExpiredKey, true, false, `{"message":"License key fetched","code":0,"data":{
			"licenseKey":"` + ExpiredKey + `","productId":"` + ProductID + `","activated":false,"activations":0,
			"maxActivations":3,"expiryDate":"T","blocked":false,"devices":[],"customer":null}}`},
		{BlockedKey, false, false, `{"message":"License key fetched","code":0,"data":{
			"licenseKey":"` + BlockedKey + `","productId":"` + ProductID + `","activated":false,"activations":0,
			"maxActivations":3,"expiryDate":null,"blocked":true,"devices":[],"customer":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, srv := newServer(t)
			got := post(t, srv, "/get-key", keyBody(tt.key))
			if got.status != http.StatusOK {
				t.Fatalf("POST /get-key(%s) status = %d, want 200 (body %s)", tt.key, got.status, got.body)
			}
			body := mustJSON(t, got.body).(map[string]any)
			data := body["data"].(map[string]any)
			now := time.Now()
			if tt.wantExpiry {
				data["expiryDate"] = checkTime(t, "expiryDate", data["expiryDate"], now.Add(-25*time.Hour), now)
			}
			if tt.wantDevice {
				dev := data["devices"].([]any)[0].(map[string]any)
				dev["activationTime"] = checkTime(t, "activationTime", dev["activationTime"], now.Add(-2*time.Hour), now)
			}
			if diff := cmp.Diff(mustJSON(t, tt.wantBody), any(body)); diff != "" {
				t.Errorf("POST /get-key(%s) body mismatch (-want +got):\n%s", tt.key, diff)
			}
		})
	}
}

// checkTime checks that v is an RFC 3339 time within [lo, hi] and returns
// the placeholder "T" that the wanted bodies use in its place.
func checkTime(t *testing.T, name string, v any, lo, hi time.Time) string {
	t.Helper()
	s, _ := v.(string)
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Errorf("%s = %v, want an RFC 3339 time", name, v)
		return "T"
	}
	if ts.Before(lo) || ts.After(hi) {
		t.Errorf("%s = %v, want between %v and %v", name, ts, lo, hi)
	}
	return "T"
}
