package policy

// smallKeys is how many keys an object may have before keySet switches from
// comparing each new key with the earlier ones to a map: below it the pairs
// are few and nothing is allocated; above it the cost stays linear (a body
// of 6,000 distinct keys took ~100 ms with pairwise comparison alone).
const smallKeys = 16

// keySet detects duplicate JSON object keys in time linear in their number.
type keySet struct {
	small [smallKeys]string
	n     int
	big   map[string]struct{} // once past smallKeys
	hint  int                 // expected number of keys, to size big at once
}

// add records key; it refuses a key seen before.
func (k *keySet) add(key string) *Error {
	if k.big == nil && k.n < smallKeys {
		for _, prev := range k.small[:k.n] {
			if prev == key {
				return badRequest("Duplicate parameter: %s", safeName(key))
			}
		}
		k.small[k.n] = key
		k.n++
		return nil
	}
	if k.big == nil {
		k.big = make(map[string]struct{}, max(4*smallKeys, k.hint))
		for _, prev := range k.small[:k.n] {
			k.big[prev] = struct{}{}
		}
	}
	if _, ok := k.big[key]; ok {
		return badRequest("Duplicate parameter: %s", safeName(key))
	}
	k.big[key] = struct{}{}
	return nil
}
