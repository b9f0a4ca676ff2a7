package jsonscan_test

import (
	"encoding/json"
	"fmt"

	"github.com/keygate/keygate/internal/jsonscan"
)

func ExampleScanner_Member() {
	body := `{"productId": "prd_1", "n\u0061me": {"x": [1, 2]}, "ok": true}`
	if !json.Valid([]byte(body)) || jsonscan.LoneSurrogate([]byte(body)) {
		return
	}
	s := jsonscan.New([]byte(body), body)
	if !s.Object() {
		return
	}
	for {
		m, ok := s.Member()
		if !ok {
			break
		}
		fmt.Printf("%s = %s\n", s.Text(m.KeyStart, m.KeyEnd, m.Escaped), body[m.ValStart:m.ValEnd])
	}
	// Output:
	// productId = "prd_1"
	// name = {"x": [1, 2]}
	// ok = true
}
