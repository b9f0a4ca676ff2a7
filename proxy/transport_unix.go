//go:build unix

package proxy

import "syscall"

// peekFunc returns the function that asks the kernel, without consuming
// anything and without waiting, whether the peer has closed c: a
// zero-length peek is its FIN, ECONNRESET its RST. raw.Control runs it
// without taking the read lock, so beside the transport's pending Read.
func (c *upConn) peekFunc() func(uintptr) {
	return func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		c.gone = (err == nil && n == 0) || err == syscall.ECONNRESET
	}
}
