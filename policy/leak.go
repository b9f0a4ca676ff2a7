package policy

import "github.com/keygate/keygate/internal/leak"

// Leak classes: why a string would show a client internal detail. They are
// the Reason of a Removed value that leaked; internal/leak defines them.
const (
	LeakControl = leak.Control // control characters, or not UTF-8
	LeakMarkup  = leak.Markup  // <, >, { or }: HTML, templates, serialized objects
	LeakURL     = leak.URL     // scheme://, or user:password@host
	LeakHost    = leak.Host    // a dotted name (host, FQDN, file name), localhost, host:port
	LeakIP      = leak.IP      // an IP address in any notation: dotted, IPv6, hex, one integer
	LeakPath    = leak.Path    // a file path
	LeakStack   = leak.Stack   // a stack trace or runtime error
	LeakDriver  = leak.Driver  // an SQL or driver error signature, an identifier with _
	LeakSecret  = leak.Secret  // a long hex or base64 run, a credential word
	LeakEcho    = leak.Echo    // the request's own token or secret parameter
	LeakLength  = leak.Length  // longer than any value a backend has reason to send
)

// Leak reports the class of internal detail s shows, or "" when it shows
// none; secrets are values the answer must not repeat (the request's token
// and secret parameters). It is leak.Class, named here for the packages that
// vet answers through the policy.
func Leak(s string, secrets ...string) string { return leak.Class(s, secrets...) }
