package policy

import (
	"strings"
	"testing"
)

// TestCreateBodies checks the create route: numeric strings, ISO 8601 dates,
// the customerId/newCustomer exclusion and the nested newCustomer rules.
func TestCreateBodies(t *testing.T) {
	const (
		badMax   = `Invalid maxActivations: must be a numeric string such as "5"`
		lenMax   = "Invalid maxActivations: must be 1 to 10 characters"
		badUses  = `Invalid usesPerKey: must be a numeric string such as "5"`
		badDate  = "Invalid expiryDate: must be an ISO 8601 date such as 2027-01-31 or 2027-01-31T00:00:00Z"
		badEmail = "Invalid newCustomer.email: must be an email address"
		both     = "customerId and newCustomer cannot be used together"
	)
	with := func(kv ...string) string { return obj(append([]string{"productId", js(okProduct)}, kv...)...) }
	var cases []bodyCase
	add := func(name, body, want string) { cases = append(cases, bodyCase{name, "create", body, want}) }

	add("productId only", with(), "")
	add("no productId", obj("maxActivations", `"5"`), MsgMissingParams)
	add("everything", with("maxActivations", `"5"`, "usesPerKey", `"10"`, "expiryDate", `"2027-01-31"`, "customerId", `"cus_1"`), "")

	for _, n := range []struct{ v, want string }{
		{`"1"`, ""}, {`"5"`, ""}, {`"0"`, ""}, {`"0005"`, ""}, {`"1234567890"`, ""},
		{`"12345678901"`, lenMax}, {`""`, lenMax},
		{`5`, "Invalid maxActivations: must be a string"}, {`5.0`, "Invalid maxActivations: must be a string"},
		{`true`, "Invalid maxActivations: must be a string"}, {`["5"]`, "Invalid maxActivations: must be a string"},
		{`null`, ""},
		{`"five"`, badMax}, {`"-1"`, badMax}, {`"+1"`, badMax}, {`"1.5"`, badMax}, {`"1e3"`, badMax},
		{`" 5"`, badMax}, {`"5 "`, badMax}, {`"0x10"`, badMax},
		{`"５"`, badMax}, // fullwidth digit: a digit to unicode, not to a backend's parseInt
		{`"٣"`, badMax}, // Arabic-Indic digit
	} {
		add("maxActivations "+n.v, with("maxActivations", n.v), n.want)
	}
	add("usesPerKey 3", with("usesPerKey", `"3"`), "")
	add("usesPerKey number", with("usesPerKey", `3`), "Invalid usesPerKey: must be a string")
	add("usesPerKey word", with("usesPerKey", `"three"`), badUses)
	add("usesPerKey 11 digits", with("usesPerKey", `"10000000000"`), "Invalid usesPerKey: must be 1 to 10 characters")

	for _, d := range []struct{ v, want string }{
		{"2027-01-31", ""},
		{"2027-01-31T00:00:00Z", ""},
		{"2027-01-31T23:59:59.999Z", ""},
		{"2027-01-31T00:00:00.123456789Z", ""},
		{"2027-01-31T00:00:00+01:00", ""},
		{"2027-01-31T00:00:00-05:30", ""},
		{"2027-01-31T00:00:00", ""},
		{"2027-01-31T00:00:00.5", ""},
		{"2027-01-31T00:00", ""},
		{"2028-02-29", ""},
		{"2027-02-29", badDate},
		{"2027-02-30", badDate},
		{"2027-13-01", badDate},
		{"2027-1-31", badDate},
		{"2027-01", badDate},
		{"20270131", badDate},
		{"2027-01-31 00:00:00", badDate},
		{"2027-01-31T24:00:00Z", badDate},
		{"2027-01-31T00:00:00+0100", badDate},
		{"2027-01-31T00:00:00.", badDate},
		{"2027-01-31Z", badDate},
		{"31/01/2027", badDate},
		{"Jan 31 2027", badDate},
		{"1800000000", badDate},
		{" 2027-01-31", badDate},
		{"", badDate},
	} {
		add("expiryDate "+d.v, with("expiryDate", js(d.v)), d.want)
	}
	add("expiryDate number", with("expiryDate", "1800000000"), "Invalid expiryDate: must be a string")
	add("expiryDate null", with("expiryDate", "null"), "")

	add("customerId", with("customerId", `"cus_1"`), "")
	add("customerId empty", with("customerId", `""`), "Invalid customerId: must be 1 to 256 characters")
	add("customerId 257", with("customerId", js(strings.Repeat("c", 257))), "Invalid customerId: must be 1 to 256 characters")
	add("customerId number", with("customerId", "42"), "Invalid customerId: must be a string")

	nc := func(v string) string { return with("newCustomer", v) }
	add("newCustomer name", nc(`{"name":"Ada Lovelace"}`), "")
	add("newCustomer name and email", nc(`{"name":"Ada","email":"ada@example.com"}`), "")
	add("newCustomer null email", nc(`{"name":"Ada","email":null}`), "")
	add("newCustomer extra field", nc(`{"name":"Ada","phone":"+44 20 7946 0000"}`), "")
	add("newCustomer null", nc(`null`), "")
	add("newCustomer empty", nc(`{}`), MsgMissingParams)
	add("newCustomer email only", nc(`{"email":"ada@example.com"}`), MsgMissingParams)
	add("newCustomer empty name", nc(`{"name":""}`), MsgMissingParams)
	add("newCustomer null name", nc(`{"name":null}`), MsgMissingParams)
	add("newCustomer name 256", nc(obj("name", js(strings.Repeat("名", 256)))), "")
	add("newCustomer name 257", nc(obj("name", js(strings.Repeat("名", 257)))), "Invalid newCustomer.name: must be 1 to 256 characters")
	add("newCustomer name number", nc(`{"name":7}`), "Invalid newCustomer.name: must be a string")
	add("newCustomer name object", nc(`{"name":{"first":"Ada"}}`), "Invalid newCustomer.name: must be a string")
	add("newCustomer name tab", nc(`{"name":"Ada\tL"}`), "Invalid newCustomer.name: must not contain control characters")
	add("newCustomer string", nc(`"Ada"`), "Invalid newCustomer: must be an object")
	add("newCustomer array", nc(`[{"name":"Ada"}]`), "Invalid newCustomer: must be an object")
	add("newCustomer number", nc(`1`), "Invalid newCustomer: must be an object")
	add("newCustomer duplicate name", nc(`{"name":"Ada","name":"Eve"}`), "Duplicate parameter: name")
	add("newCustomer duplicate unknown", nc(`{"name":"Ada","x":1,"x":2}`), "Duplicate parameter: x")
	add("newCustomer escaped duplicate", nc(`{"name":"Ada","n\u0061me":"Eve"}`), "Duplicate parameter: name")
	add("newCustomer case variant", nc(`{"Name":"Ada"}`), "Unexpected parameter Name (did you mean name?)")
	add("newCustomer case variant beside", nc(`{"name":"Ada","EMAIL":"eve@example.com"}`), "Unexpected parameter EMAIL (did you mean email?)")

	for _, e := range []struct{ v, want string }{
		{"ada@example.com", ""},
		{"ada.lovelace+keys@mail.example.co.uk", ""},
		{"a@b.c", ""},
		{"ada@localhost", badEmail},
		{"ada", badEmail},
		{"@example.com", badEmail},
		{"ada@", badEmail},
		{"ada@@example.com", badEmail},
		{"ada@ex@ample.com", badEmail},
		{"ada lovelace@example.com", badEmail},
		{"<ada@example.com>", badEmail},
		{"ada@example.com, eve@example.com", badEmail},
		{`"ada"@example.com`, badEmail},
		{"", badEmail},
		{strings.Repeat("a", 245) + "@example.com", "Invalid newCustomer.email: must be 0 to 256 characters"},
		{strings.Repeat("a", 244) + "@example.com", ""},
	} {
		add("email "+e.v, nc(obj("name", `"Ada"`, "email", js(e.v))), e.want)
	}
	add("email number", nc(`{"name":"Ada","email":1}`), "Invalid newCustomer.email: must be a string")

	add("both customers", with("customerId", `"cus_1"`, "newCustomer", `{"name":"Ada"}`), both)
	add("both, customerId null", with("customerId", "null", "newCustomer", `{"name":"Ada"}`), "")
	add("both, newCustomer null", with("customerId", `"cus_1"`, "newCustomer", "null"), "")
	add("both, rules first", with("customerId", `"cus_1"`, "newCustomer", `{}`), MsgMissingParams)
	add("both, bad customerId first", with("customerId", `""`, "newCustomer", `{"name":"Ada"}`), "Invalid customerId: must be 1 to 256 characters")
	// Params are checked in name order once every required one is there.
	add("first problem by name", with("usesPerKey", `"x"`, "maxActivations", `"y"`, "expiryDate", `"z"`), badDate)
	add("nested problem in name order", with("newCustomer", `{"email":"x"}`, "usesPerKey", `"x"`), MsgMissingParams)

	checkBodyCases(t, Default(), cases)
}

func TestIsEmailRejectsBadDomains(t *testing.T) {
	for s, want := range map[string]bool{"a@b.co": true, "a.b+c@ex.example": true, "a@b.": false, "a@.b": false, "a@b..c": false, "a@b": false, "@b.co": false, "a@b@c.co": false} {
		if got := isEmail(s); got != want {
			t.Errorf("isEmail(%q) = %v, want %v", s, got, want)
		}
	}
}
