package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// client is one keep-alive HTTP/1.1 connection that sends prepared request
// bytes and reads the answer with as little work as possible, so that the
// load generator takes a small share of the machine it shares with the
// servers it measures. It is not safe for concurrent use.
type client struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
	body []byte // the last answer's body, when keep is set
	keep bool
}

func newClient(addr string) *client { return &client{addr: addr} }

func (c *client) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 16<<10)
	} else {
		c.br.Reset(conn)
	}
	c.conn = conn
	return nil
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// do sends req (a whole HTTP/1.1 request) and reads the answer; it returns
// the status. A broken connection is closed and redialled on the next call.
func (c *client) do(req []byte) (int, error) {
	if err := c.send(req); err != nil {
		return 0, err
	}
	return c.recv()
}

// send writes req, dialling first when the connection is closed.
func (c *client) send(req []byte) error {
	if c.conn == nil {
		if err := c.dial(); err != nil {
			return err
		}
	}
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return err
	}
	return nil
}

// recv reads the answer to the request sent last.
func (c *client) recv() (int, error) {
	status, closeConn, err := c.read()
	if err != nil || closeConn {
		c.close()
	}
	return status, err
}

var errMalformed = errors.New("malformed response")

// read reads one answer: status line, headers, and a body framed by
// Content-Length, chunked encoding or the end of the connection.
func (c *client) read() (status int, closeConn bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, true, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, true, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, true, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	length, chunked := -1, false
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, true, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, true, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, true, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeConn = bytes.EqualFold(value, []byte("close"))
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		err = c.chunked()
	case length >= 0:
		err = c.skip(length)
	default: // delimited by the end of the connection
		closeConn = true
		var b bytes.Buffer
		_, err = io.Copy(&b, c.br)
		if c.keep {
			c.body = append(c.body, b.Bytes()...)
		}
	}
	return status, closeConn, err
}

func (c *client) skip(n int) error {
	if !c.keep {
		_, err := c.br.Discard(n)
		return err
	}
	start := len(c.body)
	c.body = append(c.body, make([]byte, n)...)
	_, err := io.ReadFull(c.br, c.body[start:])
	return err
}

func (c *client) chunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			for { // trailers, then the empty line
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if err := c.skip(int(n)); err != nil {
			return err
		}
		if _, err := c.br.Discard(2); err != nil {
			return err
		}
	}
}
