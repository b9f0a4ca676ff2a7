//go:build unix

package proxy

import "syscall"

// peekClosed asks the kernel, without consuming anything and without
// waiting, whether the peer has closed the socket: a zero-length peek is
// its FIN, ECONNRESET its RST. Control does not take the read lock, so it
// runs beside the transport's pending Read.
func peekClosed(rc syscall.RawConn) bool {
	closed := false
	rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = (err == nil && n == 0) || err == syscall.ECONNRESET
	})
	return closed
}
