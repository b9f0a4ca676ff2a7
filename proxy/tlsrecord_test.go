package proxy

import "testing"

// FuzzRecordScan: however the bytes of a connection arrive (cut anywhere,
// into any reads), the record framing recordScan follows is the same; and
// a stream of whole records always ends on a record boundary.
func FuzzRecordScan(f *testing.F) {
	f.Add([]byte{23, 3, 3, 0, 2, 'h', 'i', 23, 3, 3, 0, 0}, 3)
	f.Add([]byte{23, 3, 3, 1, 0}, 4)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		var whole, split recordScan
		whole.feed(data)
		if cut < 0 {
			cut = -cut
		}
		if len(data) > 0 {
			cut %= len(data) + 1
		} else {
			cut = 0
		}
		split.feed(data[:cut])
		split.feed(data[cut:])
		if whole != split {
			t.Errorf("feed(%x) = %+v, fed in two at %d = %+v", data, whole, cut, split)
		}
		// data made into records of its own bytes: a boundary at the end
		var recs []byte
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 300)
			recs = append(recs, 23, 3, 3, byte(n>>8), byte(n))
			recs = append(recs, rest[:n]...)
			rest = rest[n:]
		}
		var s recordScan
		for i := 0; i < len(recs); i += 7 {
			s.feed(recs[i:min(i+7, len(recs))])
		}
		if !s.whole() {
			t.Errorf("records of %x read 7 bytes at a time: not whole (%+v)", data, s)
		}
	})
}
