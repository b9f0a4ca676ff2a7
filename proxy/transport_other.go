//go:build !unix

package proxy

import "syscall"

// peekClosed cannot ask the kernel here: only the idle limits apply.
func peekClosed(syscall.RawConn) bool { return false }
