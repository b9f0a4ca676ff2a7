package auth

import (
	"crypto/elliptic"
	"encoding/json"
	"strings"
	"testing"
)

// Published examples: RFC 7515 appendix A.1 (HS256), A.2 (RS256), A.3
// (ES256) and RFC 8037 appendix A.4 (Ed25519). They are the evidence that
// the signing input, the encodings and the ECDSA signature layout agree
// with every other implementation, not only with this package's own test
// signer.
const (
	rfc7515Payload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	rfc7515HS256   = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." + rfc7515Payload + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfc7515HSKey   = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
	rfc7515RS256   = "eyJhbGciOiJSUzI1NiJ9." + rfc7515Payload + "." +
		"cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
	rfc7515RSAN  = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
	rfc7515ES256 = "eyJhbGciOiJFUzI1NiJ9." + rfc7515Payload + "." +
		"DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
	rfc7515ECX = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
	rfc7515ECY = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
	rfc8037JWS = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc." +
		"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
	rfc8037X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
)

func mustJWK(t *testing.T, doc string) *Key {
	t.Helper()
	k, err := parseJWK(json.RawMessage(doc))
	if err != nil {
		t.Fatalf("parseJWK(%s): %v", doc, err)
	}
	return k
}

func TestVerifySignatureRFCVectors(t *testing.T) {
	hsSecret, err := b64.DecodeString(rfc7515HSKey)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := NewHMACKey(hsSecret)
	if err != nil {
		t.Fatal(err)
	}
	rs := mustJWK(t, `{"kty":"RSA","n":"`+rfc7515RSAN+`","e":"AQAB"}`)
	es := mustJWK(t, `{"kty":"EC","crv":"P-256","x":"`+rfc7515ECX+`","y":"`+rfc7515ECY+`"}`)
	ed := mustJWK(t, `{"kty":"OKP","crv":"Ed25519","x":"`+rfc8037X+`"}`)
	for _, tc := range []struct {
		name, token string
		key         *Key
	}{
		{"RFC 7515 A.1 HS256", rfc7515HS256, hs},
		{"RFC 7515 A.2 RS256", rfc7515RS256, rs},
		// A.3's S is above n/2, which keygate refuses (see
		// TestJWTRefusesMalleatedECDSA); its low-S twin is the same
		// signature of the same input.
		{"RFC 7515 A.3 ES256, low-S twin", lowSTwin(t, rfc7515ES256), es},
		{"RFC 8037 A.4 EdDSA", rfc8037JWS, ed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, reason := parseJWS(tc.token, true)
			if reason != "" {
				t.Fatalf("parseJWS = %q, want a parsed token", reason)
			}
			if !j.verify(tc.key) {
				t.Fatal("verify = false, want true")
			}
			for _, other := range []*Key{hs, rs, es, ed} {
				if other != tc.key && j.verify(other) {
					t.Errorf("verified %s with a key of another type", j.alg.name)
				}
			}
			h, rest, _ := strings.Cut(tc.token, ".")
			p, _, _ := strings.Cut(rest, ".")
			payload, _ := b64.DecodeString(p)
			flipped := append([]byte(nil), j.sig...)
			flipped[len(flipped)-1] ^= 1
			for name, token := range map[string]string{
				"flipped bit": h + "." + p + "." + enc(flipped),
				"other input": h + "." + enc(append(payload, 'x')) + "." + enc(j.sig),
				"truncated":   h + "." + p + "." + enc(j.sig[:len(j.sig)-1]),
			} {
				if m, reason := parseJWS(token, true); reason == "" && m.verify(tc.key) {
					t.Errorf("verify(%s) = true, want false", name)
				}
			}
		})
	}
}

// lowSTwin returns token with its ES256 signature's S replaced by n-S.
func lowSTwin(t *testing.T, token string) string {
	t.Helper()
	if _, reason := parseJWS(token, true); reason != ReasonMalformed {
		t.Fatalf("parseJWS(high-S token) = %q, want %q", reason, ReasonMalformed)
	}
	return malleate(t, token)
}

func TestParseJWSRejects(t *testing.T) {
	good := signJWT(t, "HS256", testSecret, nil, `{"a":1}`)
	h, rest, _ := strings.Cut(good, ".")
	p, s, _ := strings.Cut(rest, ".")
	hdr := func(json string) string { return enc([]byte(json)) + "." + p + "." + s }
	for _, tc := range []struct {
		name, token, want string
	}{
		{"two segments", h + "." + p, ReasonMalformed},
		{"four segments", good + ".x", ReasonMalformed},
		{"empty signature", h + "." + p + ".", ReasonMalformed},
		{"padding", h + "=." + p + "." + s, ReasonMalformed},
		{"standard base64", h + "." + p + "." + strings.ReplaceAll(s+"+/", "-", "+"), ReasonMalformed},
		{"header not JSON", hdr(`alg`), ReasonMalformed},
		{"header an array", hdr(`["HS256"]`), ReasonMalformed},
		{"no alg", hdr(`{"typ":"JWT"}`), ReasonMalformed},
		{"alg null", hdr(`{"alg":null}`), ReasonMalformed},
		{"alg a number", hdr(`{"alg":256}`), ReasonMalformed},
		{"duplicate alg", hdr(`{"alg":"HS256","alg":"none"}`), ReasonMalformed},
		{"trailing data", hdr(`{"alg":"HS256"}{}`), ReasonMalformed},
		{"kid a number", hdr(`{"alg":"HS256","kid":1}`), ReasonMalformed},
		{"crit", hdr(`{"alg":"HS256","crit":["exp"],"exp":1}`), ReasonMalformed},
		{"empty crit", hdr(`{"alg":"HS256","crit":[]}`), ReasonMalformed},
		{"b64 false", hdr(`{"alg":"HS256","b64":false,"crit":["b64"]}`), ReasonMalformed},
		{"alg none", hdr(`{"alg":"none"}`), ReasonBadAlg},
		{"alg None", hdr(`{"alg":"None"}`), ReasonBadAlg},
		{"alg NONE", hdr(`{"alg":"NONE"}`), ReasonBadAlg},
		{"alg lower case", hdr(`{"alg":"hs256"}`), ReasonBadAlg},
		{"alg ES256K", hdr(`{"alg":"ES256K"}`), ReasonBadAlg},
		{"alg spelled ALG", hdr(`{"ALG":"HS256"}`), ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := parseJWS(tc.token, true); got != tc.want {
				t.Errorf("parseJWS(%s) = %q, want %q", tc.token, got, tc.want)
			}
		})
	}
	if j, reason := parseJWS(good, true); reason != "" || j.alg.name != "HS256" || string(j.payload()) != `{"a":1}` {
		t.Errorf("parseJWS(good, true) = %+v, %q", j, reason)
	}
}

func TestParseJWK(t *testing.T) {
	rk, _ := rsaKeys(t)
	ec := ecKey(t, elliptic.P256())
	ecJWK := publicJWK(t, "e1", "", ec)
	withEC := func(changes map[string]any) string {
		m := map[string]any{}
		for k, v := range ecJWK {
			m[k] = v
		}
		for k, v := range changes {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"EC", withEC(nil), true},
		{"EC use sig", withEC(map[string]any{"use": "sig"}), true},
		{"EC use enc", withEC(map[string]any{"use": "enc"}), false},
		{"EC key_ops without verify", withEC(map[string]any{"key_ops": []string{"encrypt"}}), false},
		{"EC with private d", withEC(map[string]any{"d": "AAAA"}), false},
		{"EC alg of another family", withEC(map[string]any{"alg": "RS256"}), false},
		{"EC point off the curve", withEC(map[string]any{"y": enc(make([]byte, 32))}), false},
		{"EC short x", withEC(map[string]any{"x": enc(make([]byte, 31))}), false},
		{"EC secp256k1", withEC(map[string]any{"crv": "secp256k1"}), false},
		{"RSA 2048", string(mustJSON(t, publicJWK(t, "r1", "RS256", rk))), true},
		{"RSA also for PS256", string(mustJSON(t, publicJWK(t, "r1", "PS256", rk))), true},
		{"RSA 1024", `{"kty":"RSA","n":"` + enc(make([]byte, 128)) + `","e":"AQAB"}`, false},
		{"oct", `{"kty":"oct","k":"` + enc(testSecret) + `"}`, false},
		{"Ed25519", string(mustJSON(t, publicJWK(t, "d1", "EdDSA", edKey(t)))), true},
		{"X25519", `{"kty":"OKP","crv":"X25519","x":"` + rfc8037X + `"}`, false},
		{"unknown kty", `{"kty":"AKP"}`, false},
		{"not an object", `[]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseJWK(json.RawMessage(tc.doc))
			if (err == nil) != tc.ok {
				t.Errorf("parseJWK(%s) error = %v, want ok %v", tc.doc, err, tc.ok)
			}
		})
	}
}
