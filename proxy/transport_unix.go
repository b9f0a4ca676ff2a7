//go:build unix

package proxy

import "syscall"

// peekFunc returns the function that asks the kernel, without consuming
// anything and without waiting, whether c may carry a new request: a
// zero-length peek is the peer's FIN, ECONNRESET its RST, and any byte
// queued on an idle connection is one the backend sent unasked (a body
// longer than its Content-Length, a second answer): it must never be read
// as the next request's answer.
func (c *upConn) peekFunc() func(uintptr) {
	return func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		c.gone = err == nil || err == syscall.ECONNRESET // n == 0: FIN; n > 0: unasked bytes
		_ = n
	}
}
