package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Fixture: one global token, a product and license keys that pass the
// policy's rules.
const (
	benchToken   = "kg-bench-token-0123456789abcdef"
	benchProduct = "prod_bench_000000000000001"
)

// benchPolicy has the two limits of the issue on activate, high enough never
// to trip, and a get route whose per-license limit a flood runs into.
const benchPolicy = `routes:
  - name: activate
    method: POST
    path: /activate-key
    product: body.productId
    params:
      productId: {required: true, min: 22, max: 256}
      licenseKey: {required: true, min: 23, max: 256}
      hostId: {required: true, min: 1, max: 64}
      deviceTag: {min: 1, max: 64}
    limits:
      - name: bench-per-license
        key: [product, licenseKey]
        rate: 100000
        per: 1s
        burst: 1000000
      - name: bench-per-token
        key: [token]
        rate: 100000
        per: 1s
        burst: 1000000
  - name: get
    method: POST
    path: /get-key
    product: body.productId
    params:
      productId: {required: true, min: 22, max: 256}
      licenseKey: {required: true, min: 23, max: 256}
    limits:
      - name: flood-per-license
        key: [licenseKey]
        rate: 10
        per: 1s
        burst: 10
      - name: bench-per-token
        key: [token]
        rate: 100000
        per: 1s
        burst: 1000000
`

func tokensFile() string {
	sum := sha256.Sum256([]byte(benchToken))
	return fmt.Sprintf("tokens:\n  - name: bench\n    sha256: %q\n    products: [\"*\"]\n", hex.EncodeToString(sum[:]))
}

func licenseKey(i int) string { return fmt.Sprintf("KEY-BENCH-%04d-0000-0000-0001", i%10000) }

func request(host, path, token, body string) []byte {
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: keygate-bench\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, host, auth, len(body), body)
}

// activations are n activation requests for distinct license keys.
func activations(host string, n int) [][]byte {
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = request(host, "/activate-key", benchToken, activationBody(i))
	}
	return reqs
}

func activationBody(i int) string {
	return fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":"host-%d"}`, benchProduct, licenseKey(i), i%97)
}
