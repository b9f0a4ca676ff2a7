package proxy_test

import (
	"log"
	"net"
	"net/http"

	"github.com/keygate/keygate/proxy"
)

// A ConnLimiter is both the listener wrapper and the server's ConnState
// hook: it must see which connections are idle to close them for room.
func ExampleConnLimiter() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	conns, err := proxy.NewConnLimiter(4096)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ConnState: conns.ConnState}
	go srv.Serve(proxy.ContractListener(conns.Listener(ln)))
	defer srv.Close()
}
