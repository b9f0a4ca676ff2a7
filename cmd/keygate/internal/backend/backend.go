// Package backend is an in-memory stand-in for a Keymint-like license API.
//
// It serves the six POST routes keygate fronts (/get-key, /activate-key,
// /deactivate-key, /create-key, /block-key, /unblock-key) with the answers
// the real service gives, and it also reproduces the legacy server's worst
// habits: a handful of LEGACY-* keys make every route answer with an nginx
// HTML page, a foreign JSON shape, a leaked stack trace or a login redirect.
// keygate demo runs it as the upstream, and end-to-end tests use it to check
// that the proxy normalizes whatever comes back into the error contract.
//
// A Backend is safe for concurrent use; all state lives behind one mutex, so
// activation limits hold under parallel requests.
package backend

import (
	"net/http"
	"sync"
	"time"
)

// Seeded identifiers. Every key is 23–256 characters long, as the proxy's
// parameter rules demand, so that requests using them reach the backend.
const (
	// ProductID is the only seeded product; every seeded key belongs to it.
	ProductID = "prod_demo_0000000000000001"
	// LicenseKey is active, owned by CustomerID, allows 3 activations and
	// never expires.
	LicenseKey = "DEMO-VALID-0000-0000-0000-0001"
	// ExpiredKey expired one day before New was called.
	ExpiredKey = "DEMO-EXPIRED-000-0000-0000-0001"
	// BlockedKey is blocked; activating it fails until /unblock-key.
	BlockedKey = "DEMO-BLOCKED-000-0000-0000-0001"
	// InactiveKey exists but is not active; activating it always fails.
	InactiveKey = "DEMO-INACTIVE-00-0000-0000-0001"
	// FullKey allows one activation, already used by host "existing-host".
	FullKey = "DEMO-FULL-00000-0000-0000-0001"
	// HTMLErrorKey makes any route answer 502 with an nginx HTML page.
	HTMLErrorKey = "LEGACY-HTML-502-0000-0000-0001"
	// ForeignJSONKey makes any route answer 422 with JSON outside the
	// contract: {"error":"license_key format invalid"}.
	ForeignJSONKey = "LEGACY-JSON-422-0000-0000-0001"
	// PlainTextKey makes any route answer 500 with a plain-text Java stack
	// trace that leaks an internal database host.
	PlainTextKey = "LEGACY-TEXT-500-0000-0000-0001"
	// RedirectKey makes any route answer 302 to /login with an HTML body.
	RedirectKey = "LEGACY-302-0000-0000-0000-00001"
	// CustomerID is the seeded customer, Ada Lovelace, who owns LicenseKey.
	CustomerID = "cust_demo_0001"
)

// FullKeyHost is the host that already holds FullKey's only activation.
const FullKeyHost = "existing-host"

// Backend is an in-memory license server. The zero value is not usable;
// call New.
type Backend struct {
	mu        sync.Mutex
	now       func() time.Time // replaceable by tests in this package
	products  map[string]bool
	licenses  map[string]*license  // by key
	customers map[string]*customer // by id
	calls     map[string]int       // by request path
}

type license struct {
	key            string
	productID      string
	maxActivations int
	expiry         time.Time // zero means the key never expires
	blocked        bool
	inactive       bool
	customerID     string // empty when the key has no owner
	devices        []device
}

type device struct {
	hostID    string
	deviceTag string
	activated time.Time
}

type customer struct {
	id    string
	name  string
	email string
}

// New returns a backend seeded with ProductID, CustomerID and the demo keys.
// ExpiredKey's expiry is computed from the current time.
func New() *Backend {
	now := time.Now().UTC().Truncate(time.Second)
	b := &Backend{
		now:       time.Now,
		products:  map[string]bool{ProductID: true},
		licenses:  make(map[string]*license),
		customers: make(map[string]*customer),
		calls:     make(map[string]int),
	}
	b.customers[CustomerID] = &customer{id: CustomerID, name: "Ada Lovelace", email: "ada@example.com"}
	for _, l := range []*license{
		{key: LicenseKey, maxActivations: 3, customerID: CustomerID},
		{key: ExpiredKey, maxActivations: 3, expiry: now.Add(-24 * time.Hour)},
		{key: BlockedKey, maxActivations: 3, blocked: true},
		{key: InactiveKey, maxActivations: 3, inactive: true},
		{key: FullKey, maxActivations: 1, devices: []device{
			{hostID: FullKeyHost, deviceTag: "existing", activated: now.Add(-time.Hour)},
		}},
	} {
		l.productID = ProductID
		b.licenses[l.key] = l
	}
	return b
}

// Calls reports how many requests reached the backend for a path such as
// "/activate-key", whatever their method and outcome. Tests use it to prove
// that the proxy answered without asking upstream.
func (b *Backend) Calls(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[path]
}

// handler serves one route. It returns the 200 body, or an *apiError.
type handler func(b *Backend, req *request) (any, error)

// routes is the fixed route table; every route is POST only.
var routes = map[string]handler{
	"/get-key":        (*Backend).getKey,
	"/activate-key":   (*Backend).activateKey,
	"/deactivate-key": (*Backend).deactivateKey,
	"/create-key":     (*Backend).createKey,
	"/block-key":      (*Backend).blockKey,
	"/unblock-key":    (*Backend).unblockKey,
}

// ServeHTTP answers one API request. The order of checks matches the legacy
// server: route, body, broken keys, then the route's own validation.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.calls[r.URL.Path]++
	b.mu.Unlock()

	h, ok := routes[r.URL.Path]
	if !ok || r.Method != http.MethodPost {
		writeError(w, errNotFound)
		return
	}
	req, err := decodeRequest(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	if broken, ok := legacyAnswers[req.LicenseKey]; ok {
		broken.write(w)
		return
	}
	body, err := h(b, req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}
