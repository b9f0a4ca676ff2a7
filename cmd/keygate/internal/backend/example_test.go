package backend_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
)

// Serve the seeded backend and activate the demo key twice: the second
// activation of the same host succeeds without using another slot.
func ExampleNew() {
	b := backend.New()
	srv := httptest.NewServer(b)
	defer srv.Close()

	body := `{"productId":"` + backend.ProductID + `","licenseKey":"` + backend.LicenseKey + `","hostId":"laptop-1"}`
	for range 2 {
		resp, err := http.Post(srv.URL+"/activate-key", "application/json", strings.NewReader(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(reply))
	}
	fmt.Println("calls:", b.Calls("/activate-key"))
	// Output:
	// 200 {"message":"License valid","licenseeName":"Ada Lovelace","code":0}
	// 200 {"message":"License valid","licenseeName":"Ada Lovelace","code":0}
	// calls: 2
}
