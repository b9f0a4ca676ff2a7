package proxy

import (
	"bytes"
	"net"
	"strconv"
	"sync"

	"github.com/keygate/keygate/policy"
)

// ContractListener wraps the API listener so that the few answers Go's HTTP
// server writes by itself, before any handler runs (431 for huge headers,
// 400 for a malformed request, 501 for an unknown transfer coding, 505 for a
// bad protocol version, 417 for an unknown Expect), leave in the contract too:
// 400 with a JSON body, and the connection closed.
//
// Why bytes on the wire and not a hook: as of Go 1.26, net/http offers none
// for these answers. The server's connection loop writes them with
// fmt.Fprintf straight to the connection when reading a request fails, and
// sends the 417 itself before the handler is called; http.Server has no field
// to replace or observe them (ErrorLog sees nothing, ConnState only the
// state), and raising MaxHeaderBytes or accepting any Expect would trade the
// contract for memory or correctness. So the listener recognises the shape
// of those answers (serverError) and writes a contract answer instead. The
// shape is pinned by TestServerOwnErrorsInContract against the real server
// of the Go version in use: a change in net/http fails it rather than
// slipping by.
func ContractListener(l net.Listener) net.Listener { return contractListener{l} }

type contractListener struct{ net.Listener }

func (l contractListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &contractConn{Conn: c}, nil
}

// contractConn rewrites the server's own error answers on the wire.
type contractConn struct {
	net.Conn
	mu     sync.Mutex
	closed bool
}

// serverErrorHeaders follow the status line of every error answer Go's
// server writes by itself; handler answers never look like this (their
// headers are sorted, and keygate's are JSON).
var serverErrorHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

func (c *contractConn) Write(b []byte) (int, error) {
	msg, ok := serverError(b)
	if !ok {
		return c.Conn.Write(b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		body := policy.RenderBody(msg, policy.CodeInvalid)
		resp := make([]byte, 0, 160+len(body))
		resp = append(resp, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: "...)
		resp = strconv.AppendInt(resp, int64(len(body)), 10)
		resp = append(resp, "\r\n\r\n"...)
		resp = append(resp, body...)
		_, _ = c.Conn.Write(resp)
		c.closed = true
		_ = c.Conn.Close()
	}
	return len(b), nil
}

// serverError recognizes an answer written by Go's server itself and
// returns the client message keygate sends instead.
func serverError(b []byte) (string, bool) {
	if len(b) < 13 || !bytes.HasPrefix(b, []byte("HTTP/1.1 ")) {
		return "", false
	}
	code := string(b[9:12])
	if code == "417" && bytes.HasPrefix(b[12:], []byte(" Expectation Failed\r\n")) {
		return "Unsupported Expect header", true
	}
	eol := bytes.Index(b, []byte("\r\n"))
	if eol < 0 || !bytes.HasPrefix(b[eol:], serverErrorHeaders) {
		return "", false
	}
	switch code {
	case "431":
		return "Request headers too large", true
	case "501":
		return "Unsupported transfer encoding", true
	case "505":
		return "Unsupported HTTP version", true
	}
	return "Malformed request", true
}
