package policy_test

import (
	"errors"
	"fmt"

	"github.com/keygate/keygate/policy"
)

func ExampleRenderBody() {
	fmt.Println(string(policy.RenderBody(policy.MsgMissingParams, policy.CodeInvalid)))
	// The message is JSON-escaped, HTML-safe, with no trailing newline.
	fmt.Println(string(policy.RenderBody(`Key "A&B" is <blocked>`, policy.CodeRefused)))
	// Output:
	// {"message":"Missing required params","code":1}
	// {"message":"Key \"A\u0026B\" is \u003cblocked\u003e","code":2}
}

func ExampleError_Body() {
	cause := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	e := policy.Errorf(500, policy.MsgServerError).Wrap(cause)

	fmt.Println(e.Status, string(e.Body())) // what the client gets
	fmt.Println(e)                          // what the log gets
	fmt.Println(errors.Is(e, cause))
	// Output:
	// 500 {"message":"Server error","code":1}
	// 500 Server error: dial tcp 10.0.0.7:5432: connection refused
	// true
}

func ExampleRoute_Normalize() {
	create := policy.Default().Match("POST", "/create-key")
	for _, up := range []struct {
		status int
		body   string
	}{
		{404, `{"message":"Customer not found","code":2}`},            // valid for this route
		{404, `{"message":"Customer not found","code":1}`},            // the route makes this a refusal
		{403, `{"error":"License is blocked"}`},                       // another shape
		{502, `<html><h1>502 Bad Gateway</h1></html>`},                // not a contract status
		{500, `{"message":"connect 10.0.0.7:5432 refused","code":1}`}, // leaks an address
	} {
		pass, e, kind := create.Normalize(up.status, []byte(up.body), false, true)
		if pass {
			fmt.Printf("%d passed unchanged\n", up.status)
			continue
		}
		fmt.Printf("%d rewritten (%s): %d %s\n", up.status, kind, e.Status, e.Body())
	}
	// Output:
	// 404 passed unchanged
	// 404 rewritten (code): 404 {"message":"Customer not found","code":2}
	// 403 rewritten (body): 403 {"message":"License is blocked","code":2}
	// 502 rewritten (status): 500 {"message":"Server error","code":1}
	// 500 rewritten (leak): 500 {"message":"Server error","code":1}
}

func ExampleRoute_ParseBody() {
	activate := policy.Default().Match("POST", "/activate-key")
	for _, body := range []string{
		`{"productId":"prd_0123456789abcdefgh","licenseKey":"ABCDE-FGHIJ-KLMNO-PQRST","hostId":"h1"}`,
		`{"productId":"prd_0123456789abcdefgh","licenseKey":"ABCDE-FGHIJ-KLMNO-PQRST"}`,
		`{"productId":"prd_0123456789abcdefgh","licenseKey":"ABCDE","hostId":"h1"}`,
		`{"productId":"prd_0123456789abcdefgh","LicenseKey":"ABCDE-FGHIJ-KLMNO-PQRST","hostId":"h1"}`,
	} {
		v, e := activate.ParseBody([]byte(body))
		if e == nil {
			e = v.Validate()
		}
		if e != nil {
			fmt.Println(e.Status, string(e.Body()))
			continue
		}
		host, _ := v.Get("hostId")
		fmt.Println("ok: product", v.Product(), "host", host)
	}
	// Output:
	// ok: product prd_0123456789abcdefgh host h1
	// 400 {"message":"Missing required params","code":1}
	// 400 {"message":"Invalid licenseKey: must be 23 to 256 characters","code":1}
	// 400 {"message":"Unexpected parameter LicenseKey (did you mean licenseKey?)","code":1}
}

func ExampleParse() {
	doc := []byte(`routes:
  - name: get
    method: FETCH
    path: /get-key
    params:
      productId: {required: true, min: 22, max: 256, requried: true}
    limits:
      - {name: guessing, key: [ip], rate: 0, per: 1m, burst: 20}
`)
	_, err := policy.Parse("policy.yaml", doc)
	var fe *policy.FileError
	if errors.As(err, &fe) {
		fmt.Println(len(fe.Problems), "problems:")
		fmt.Println(err)
	}
	// Output:
	// 3 problems:
	// policy.yaml:3:13: route get: method "FETCH" must be one of GET, POST, PUT, PATCH, DELETE
	// policy.yaml:6:54: unknown field "requried" in param (did you mean required?)
	// policy.yaml:8:43: route get: limit guessing: rate must be > 0
}

func ExampleToken_Allows() {
	// The file holds the SHA-256 of each token (echo -n TOKEN | sha256sum),
	// never the token itself.
	doc := []byte(`tokens:
  - name: shop
    sha256: 06e78cd2b493b9b8336b8ba141d9e5f66e19367e2342c621cad1f4b79cd4126e
    products: [prd_0123456789abcdefgh]
`)
	toks, err := policy.ParseTokens("tokens.yaml", doc, policy.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	tok := toks.Lookup("kg_shop_7Hq2")
	fmt.Println(tok.Name, toks.Lookup("kg_shop_7Hq3") == nil)

	get := policy.Default().Match("POST", "/get-key")
	for _, product := range []string{"prd_0123456789abcdefgh", "prd_someone-elses-product"} {
		ok, reason := tok.Allows(get, product)
		fmt.Printf("%s: %v %q\n", product, ok, reason)
	}
	// Output:
	// shop true
	// prd_0123456789abcdefgh: true ""
	// prd_someone-elses-product: false "product"
}
