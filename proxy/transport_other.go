//go:build !unix

package proxy

// peekFunc is nil here: the kernel cannot be asked, only the idle limits
// apply.
func (c *upConn) peekFunc() func(uintptr) { return nil }
