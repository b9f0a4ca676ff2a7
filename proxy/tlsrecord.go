package proxy

// recordScan follows the TLS record framing of the bytes read from a
// connection, without decrypting anything: the length in each 5-byte
// record header says where the next record starts. tls.Conn reads ahead of
// the record it decrypts, and holds the start of a later record where no
// read with a past deadline returns it (it is not whole yet) and the
// kernel peek cannot see it (it is no longer queued); only the framing
// tells that such bytes were read.
type recordScan struct {
	hdr  [5]byte
	n    int // header bytes of the current record seen so far
	left int // payload bytes of the current record still to come
}

// feed follows b, the next bytes read from the connection.
func (s *recordScan) feed(b []byte) {
	for len(b) > 0 {
		if s.left > 0 {
			k := min(s.left, len(b))
			s.left -= k
			b = b[k:]
			continue
		}
		s.hdr[s.n] = b[0]
		s.n++
		b = b[1:]
		if s.n == len(s.hdr) {
			s.n, s.left = 0, int(s.hdr[3])<<8|int(s.hdr[4])
		}
	}
}

// whole reports that every record read so far was read to its end.
func (s *recordScan) whole() bool { return s.n == 0 && s.left == 0 }
