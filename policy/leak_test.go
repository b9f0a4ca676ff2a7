package policy

import "testing"

// TestBuiltinMessagesAreClean: every message the built-in policy lists passes
// the detector (Parse checks it; this shows the list is not empty).
func TestBuiltinMessagesAreClean(t *testing.T) {
	for _, r := range Default().Routes {
		if r.Response == nil || len(r.Response.Messages) < 20 {
			t.Fatalf("route %s lists %d messages, want Keymint's documented ones", r.Name, len(r.Response.Messages))
		}
		for _, m := range r.Response.Messages {
			if c := Leak(m); c != "" {
				t.Errorf("Leak(%q) = %q, want clean", m, c)
			}
		}
	}
}
