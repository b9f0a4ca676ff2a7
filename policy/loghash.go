package policy

import (
	"crypto/sha256"
	"encoding/hex"
)

// AppendHashToken appends HashToken(secret) to dst: the same label, for
// callers that build a log line in a buffer and must not allocate one
// string per secret. The secret reaches the digest through a stack buffer:
// converting a long string to bytes would allocate.
func AppendHashToken(dst []byte, secret string) []byte {
	var chunk [128]byte
	var sum [sha256.Size]byte
	if len(secret) <= len(chunk) { // tokens and license keys: one call
		sum = sha256.Sum256(chunk[:copy(chunk[:], secret)])
	} else {
		d := sha256.New()
		for len(secret) > 0 {
			n := copy(chunk[:], secret)
			d.Write(chunk[:n])
			secret = secret[n:]
		}
		d.Sum(sum[:0])
	}
	return hex.AppendEncode(dst, sum[:6])
}
