package backend

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBodyBytes bounds a request body; the real API bodies are tiny.
const maxBodyBytes = 1 << 20

// request is the union of every route's JSON parameters.
type request struct {
	ProductID      string          `json:"productId"`
	LicenseKey     string          `json:"licenseKey"`
	HostID         string          `json:"hostId"`
	DeviceTag      string          `json:"deviceTag"`
	MaxActivations json.RawMessage `json:"maxActivations"` // a numeric string, or a number
	ExpiryDate     string          `json:"expiryDate"`     // RFC 3339; empty means never
	CustomerID     string          `json:"customerId"`
	NewCustomer    *newCustomer    `json:"newCustomer"`
}

type newCustomer struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// decodeRequest parses the body as one JSON object. An empty, oversized or
// mistyped body is as unparsable as a syntax error.
func decodeRequest(w http.ResponseWriter, r *http.Request) (*request, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, errInvalidJSON
	}
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, errInvalidJSON
	}
	return &req, nil
}

// lookup finds the license named by req. Callers hold b.mu.
func (b *Backend) lookup(req *request) (*license, error) {
	if req.ProductID == "" || req.LicenseKey == "" {
		return nil, errMissingParams
	}
	if !b.products[req.ProductID] {
		return nil, errProductNotFound
	}
	l, ok := b.licenses[req.LicenseKey]
	if !ok || l.productID != req.ProductID {
		return nil, errKeyNotFound
	}
	return l, nil
}

// keyData is the "data" object of /get-key.
type keyData struct {
	LicenseKey     string        `json:"licenseKey"`
	ProductID      string        `json:"productId"`
	Activated      bool          `json:"activated"`
	Activations    int           `json:"activations"`
	MaxActivations int           `json:"maxActivations"`
	ExpiryDate     *string       `json:"expiryDate"`
	Blocked        bool          `json:"blocked"`
	Devices        []deviceData  `json:"devices"`
	Customer       *customerData `json:"customer"`
}

type deviceData struct {
	HostID         string `json:"hostId"`
	DeviceTag      string `json:"deviceTag"`
	ActivationTime string `json:"activationTime"`
}

type customerData struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type getKeyReply struct {
	Message string  `json:"message"`
	Code    int     `json:"code"`
	Data    keyData `json:"data"`
}

func (b *Backend) getKey(req *request) (any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, err := b.lookup(req)
	if err != nil {
		return nil, err
	}
	d := keyData{
		LicenseKey:     l.key,
		ProductID:      l.productID,
		Activated:      len(l.devices) > 0,
		Activations:    len(l.devices),
		MaxActivations: l.maxActivations,
		Blocked:        l.blocked,
		Devices:        make([]deviceData, 0, len(l.devices)),
	}
	if !l.expiry.IsZero() {
		s := l.expiry.UTC().Format(time.RFC3339)
		d.ExpiryDate = &s
	}
	for _, dev := range l.devices {
		d.Devices = append(d.Devices, deviceData{
			HostID:         dev.hostID,
			DeviceTag:      dev.deviceTag,
			ActivationTime: dev.activated.UTC().Format(time.RFC3339),
		})
	}
	if c, ok := b.customers[l.customerID]; ok {
		d.Customer = &customerData{ID: c.id, Name: c.name, Email: c.email}
	}
	return getKeyReply{Message: "License key fetched", Code: codeOK, Data: d}, nil
}

type activateReply struct {
	Message      string `json:"message"`
	LicenseeName string `json:"licenseeName"`
	Code         int    `json:"code"`
}

func (b *Backend) activateKey(req *request) (any, error) {
	if req.HostID == "" {
		return nil, errMissingParams
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	l, err := b.lookup(req)
	if err != nil {
		return nil, err
	}
	now := b.now()
	switch {
	case !l.expiry.IsZero() && !now.Before(l.expiry):
		return nil, errExpired
	case l.blocked:
		return nil, errBlocked
	case l.inactive:
		return nil, errInactive
	}
	// A host that already holds a slot keeps it; only new hosts count.
	if !slices.ContainsFunc(l.devices, func(d device) bool { return d.hostID == req.HostID }) {
		if len(l.devices) >= l.maxActivations {
			return nil, errLimitReached
		}
		l.devices = append(l.devices, device{hostID: req.HostID, deviceTag: req.DeviceTag, activated: now})
	}
	reply := activateReply{Message: "License valid", Code: codeOK}
	if c, ok := b.customers[l.customerID]; ok {
		reply.LicenseeName = c.name
	}
	return reply, nil
}

func (b *Backend) deactivateKey(req *request) (any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, err := b.lookup(req)
	if err != nil {
		return nil, err
	}
	if req.HostID == "" {
		l.devices = nil
		return message{Message: "All devices deactivated", Code: codeOK}, nil
	}
	i := slices.IndexFunc(l.devices, func(d device) bool { return d.hostID == req.HostID })
	if i < 0 {
		return nil, errDeviceNotFound
	}
	l.devices = slices.Delete(l.devices, i, i+1)
	return message{Message: "Device deactivated", Code: codeOK}, nil
}

func (b *Backend) blockKey(req *request) (any, error) {
	return b.setBlocked(req, true, "License key blocked")
}

func (b *Backend) unblockKey(req *request) (any, error) {
	return b.setBlocked(req, false, "License key unblocked")
}

func (b *Backend) setBlocked(req *request, blocked bool, msg string) (any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, err := b.lookup(req)
	if err != nil {
		return nil, err
	}
	l.blocked = blocked
	return message{Message: msg, Code: codeOK}, nil
}

type createReply struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
	Key     string `json:"key"`
}

func (b *Backend) createKey(req *request) (any, error) {
	if req.ProductID == "" || (req.NewCustomer != nil && req.NewCustomer.Name == "") {
		return nil, errMissingParams
	}
	maxActivations, err := parseMaxActivations(req.MaxActivations)
	if err != nil {
		return nil, err
	}
	var expiry time.Time
	if req.ExpiryDate != "" {
		if expiry, err = time.Parse(time.RFC3339, req.ExpiryDate); err != nil {
			return nil, errInvalidExpiry
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.products[req.ProductID] {
		return nil, errProductNotFound
	}
	l := &license{productID: req.ProductID, maxActivations: maxActivations, expiry: expiry}
	switch {
	case req.CustomerID != "":
		if _, ok := b.customers[req.CustomerID]; !ok {
			return nil, errCustomerNotFound
		}
		l.customerID = req.CustomerID
	case req.NewCustomer != nil:
		if req.NewCustomer.Email != "" {
			for _, c := range b.customers {
				if strings.EqualFold(c.email, req.NewCustomer.Email) {
					return nil, errCustomerExists
				}
			}
		}
		c := &customer{id: "cust_" + randomHex(8), name: req.NewCustomer.Name, email: req.NewCustomer.Email}
		b.customers[c.id] = c
		l.customerID = c.id
	}
	for l.key == "" || b.licenses[l.key] != nil {
		l.key = randomHex(20)
	}
	b.licenses[l.key] = l
	return createReply{Message: "License key created", Code: codeOK, Key: l.key}, nil
}

// parseMaxActivations reads the legacy API's maxActivations, which clients
// send as a numeric string ("3"); a bare number is accepted too. Absent or
// null means 1.
func parseMaxActivations(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 1, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, errInvalidMax
	}
	return n, nil
}

// randomHex returns 2n random hex digits. crypto/rand.Read never fails.
func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}
