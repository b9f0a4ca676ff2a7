package auth

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
)

// Upstream credential modes, as UpstreamAuth.Mode reports them.
const (
	UpstreamForward = "forward" // the client's Authorization goes upstream unchanged
	UpstreamFixed   = "fixed"   // a fixed backend credential replaces it
	UpstreamStrip   = "strip"   // no Authorization goes upstream
)

// maxUpstreamAuth bounds the fixed credential.
const maxUpstreamAuth = 8192

// UpstreamAuth decides the Authorization header keygate sends to the
// backend. By default the client's is forwarded. A fixed value (such as
// "Bearer <backend key>" or "Basic <base64>") replaces it, so that clients'
// tokens never reach the backend and the backend's key never reaches
// clients; "none" removes it. A nil *UpstreamAuth forwards. It is safe for
// concurrent use.
type UpstreamAuth struct {
	file  string
	mode  string
	value atomic.Pointer[string]
}

// NewUpstreamAuth reads the setting from value (KEYGATE_UPSTREAM_AUTH) or
// file (KEYGATE_UPSTREAM_AUTH_FILE, a path whose content, trimmed of
// surrounding white space, is the value); at most one may be set. Neither
// means forward; "none" means strip; anything else is the full header
// value, "<scheme> <credentials>". Errors never quote the value.
func NewUpstreamAuth(value, file string) (*UpstreamAuth, error) {
	if value != "" && file != "" {
		return nil, errors.New("auth: upstream credential: set the value or the file, not both")
	}
	u := &UpstreamAuth{file: file, mode: UpstreamForward}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("auth: upstream credential file: %w", err)
		}
		value = strings.TrimSpace(string(data))
		if value == "" {
			return nil, fmt.Errorf("auth: upstream credential file %s is empty", file)
		}
	}
	switch value {
	case "":
		return u, nil
	case "none":
		u.mode = UpstreamStrip
		return u, nil
	}
	if err := checkCredential(value); err != nil {
		return nil, err
	}
	u.mode = UpstreamFixed
	u.value.Store(&value)
	return u, nil
}

// checkCredential refuses values that are not one header field value of
// the form "<scheme> <credentials>", without quoting them.
func checkCredential(v string) error {
	if len(v) > maxUpstreamAuth {
		return fmt.Errorf("auth: upstream credential is longer than %d bytes", maxUpstreamAuth)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("auth: upstream credential has a control or non-ASCII byte at offset %d", i)
		}
	}
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok || scheme == "" || strings.TrimSpace(cred) == "" || strings.ContainsAny(scheme, "\"(),/:;<=>?@[\\]{}") {
		return errors.New(`auth: upstream credential must be a whole Authorization value, "<scheme> <credentials>", such as "Bearer abc..."`)
	}
	return nil
}

// Mode returns UpstreamForward, UpstreamFixed or UpstreamStrip, for a
// startup log line.
func (u *UpstreamAuth) Mode() string {
	if u == nil {
		return UpstreamForward
	}
	return u.mode
}

// String describes the setting without revealing the credential.
func (u *UpstreamAuth) String() string {
	if u.Mode() == UpstreamFixed {
		v := *u.value.Load()
		scheme, _, _ := strings.Cut(v, " ")
		return fmt.Sprintf("fixed (%s, %d bytes)", scheme, len(v))
	}
	return u.Mode()
}

// Apply sets the Authorization of h, the header keygate builds for a
// request about to go upstream, after the client's token has been checked.
func (u *UpstreamAuth) Apply(h http.Header) {
	switch u.Mode() {
	case UpstreamFixed:
		h.Set("Authorization", *u.value.Load())
	case UpstreamStrip:
		h.Del("Authorization")
	}
}

// Reload reads the credential file again, for a secret rotated in place
// (call it on SIGHUP or from the tokens file's reload tick). It reports
// whether the value changed. Without a file it does nothing; on error the
// old value stays. The mode never changes: a file that now says "none" is
// an error.
func (u *UpstreamAuth) Reload() (changed bool, err error) {
	if u == nil || u.file == "" {
		return false, nil
	}
	data, err := os.ReadFile(u.file)
	if err != nil {
		return false, fmt.Errorf("auth: upstream credential file: %w", err)
	}
	v := strings.TrimSpace(string(data))
	if (v == "none") != (u.mode == UpstreamStrip) || v == "" {
		return false, fmt.Errorf("auth: upstream credential file %s: the mode cannot change without a restart", u.file)
	}
	if u.mode == UpstreamStrip {
		return false, nil
	}
	if err := checkCredential(v); err != nil {
		return false, err
	}
	if old := u.value.Load(); old != nil && *old == v {
		return false, nil
	}
	u.value.Store(&v)
	return true, nil
}
