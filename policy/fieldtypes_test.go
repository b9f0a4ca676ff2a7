package policy

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expressions the field types were matched with before
// fieldtypes.go: the reference isFieldID, isFieldEmail and isFieldDatetime must agree with.
var (
	idRE       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	emailRE    = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)
	datetimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$`)
)

var fieldTypeSeeds = []string{
	"", "a", "prod_1", "cus-0001", strings.Repeat("a", 256), strings.Repeat("a", 257), "a b", "a.b", "ключ",
	"ada@example.com", "a@b", "a@b.", "a@.b", "a@b..c", "a@b.c-d", "@b.c", "a@@b.c", "a.b+c@x-y.z.w", strings.Repeat("a", 64) + "@b.c",
	strings.Repeat("a", 65) + "@b.c", "a@b.c@d", "a b@c.d", "a@b_c.d", "a@-.-",
	"2027-01-31", "2027-01-31T00:00:00Z", "2027-01-31 00:00", "2027-01-31T00:00:00.123456789+01:00", "2027-01-31T00:00:00.1234567890Z",
	"2027-01-31T00:00:00.Z", "2027-01-31T00:00Z", "2027-01-31T00:00+0100", "2027-01-31T00:00:00-01:0", "2027-01-31T00:00:", "2027-01-31T",
	"2027-01-31T00:00:00+01:00:", "2027-1-31", "2027-01-31x", "2027-01-31T00:00:00+0:100", "2027-01-31T00:00:00+01::00", "２０２７-01-31",
}

func TestFieldTypesMatchTheirExpressions(t *testing.T) {
	for _, s := range fieldTypeSeeds {
		checkFieldTypes(t, s)
	}
}

func FuzzFieldTypes(f *testing.F) {
	for _, s := range fieldTypeSeeds {
		f.Add(s)
	}
	f.Fuzz(checkFieldTypes)
}

func checkFieldTypes(t *testing.T, s string) {
	for _, tc := range []struct {
		name string
		fn   func(string) bool
		re   *regexp.Regexp
	}{{"isFieldID", isFieldID, idRE}, {"isFieldEmail", isFieldEmail, emailRE}, {"isFieldDatetime", isFieldDatetime, datetimeRE}} {
		if got, want := tc.fn(s), tc.re.MatchString(s); got != want {
			t.Errorf("%s(%q) = %v, want %v (%s)", tc.name, s, got, want, tc.re)
		}
	}
}
