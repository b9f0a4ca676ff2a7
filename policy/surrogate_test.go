package policy

import "testing"

// TestLoneSurrogateRefused: a \u escape naming half of a surrogate pair is
// refused, in any string of the body (key or value, nested or not); Go reads
// it as U+FFFD where Node and Python keep the lone half.
func TestLoneSurrogateRefused(t *testing.T) {
	r := Default().Match("POST", "/activate-key")
	head := `{"productId":"` + okProduct + `","hostId":"` + okHost + `",`
	for _, tc := range []struct {
		name, body string
		refused    bool
	}{
		{"high half at the end", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQRS\ud800"}`, true},
		{"low half alone", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQRS\uDC00"}`, true},
		{"halves swapped", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQ\udc00\ud800"}`, true},
		{"high half then a letter", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQ\uD83Dx"}`, true},
		{"high half then an escaped letter", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQ\ud83d\u0041"}`, true},
		{"two high halves", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQ\ud83d\ud83d\udd11"}`, true},
		{"in an unchecked key", head + `"licenseKey":"` + okKey + `","n\udfff":1}`, true},
		{"in a nested value", head + `"licenseKey":"` + okKey + `","x":[{"y":"\ud800"}]}`, true},
		{"a pair", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQ\ud83d\udd11"}`, false},
		{"a pair in capitals", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQ\uD83D\uDD11"}`, false},
		{"escaped backslash before u", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQ\\ud800"}`, false},
		{"other escapes", head + `"licenseKey":"ABCDE-FGHIJ-KLMNO-PQ\u00e9\n\\"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, e := r.ParseBody([]byte(tc.body))
			switch {
			case tc.refused && (e == nil || e.Status != 400 || e.Code != CodeInvalid || e.Message != msgLoneSurrogate):
				t.Errorf("ParseBody(%s) = %v, want 400 code 1 %q", tc.body, e, msgLoneSurrogate)
			case !tc.refused && e != nil:
				t.Errorf("ParseBody(%s) = %v, want accepted", tc.body, e)
			}
			if got := hasLoneSurrogate([]byte(tc.body)); got != tc.refused {
				t.Errorf("hasLoneSurrogate(%s) = %v, want %v", tc.body, got, tc.refused)
			}
		})
	}
}
