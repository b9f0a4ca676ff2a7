package policy

// smallKeys is how many keys an object may have before keySet switches from
// comparing each new key with the earlier ones to a map: below it the pairs
// are few and nothing is allocated; above it the cost stays linear (a body
// of 6,000 distinct keys took 45 ms with pairwise comparison alone).
const smallKeys = 16

// compareNames is SameName; tests count its calls to show the check is
// linear without timing it.
var compareNames = SameName

// keySet detects object keys or query names that are the same name to some
// binder (FoldName), in time linear in their number.
type keySet struct {
	small [smallKeys]string // as added when ASCII (SameName compares them in place), else folded
	orig  [smallKeys]string // as added
	n     int
	big   map[string]string // FoldName → name as added, once past smallKeys
	hint  int               // expected number of names, to size big at once
}

// addFolded records name, whose fold by nameFolder is folded; it refuses one that is
// the same name as an earlier one. The caller folds each name once.
func (k *keySet) addFolded(name, folded string) *Error {
	if prev, dup := k.seen(name, folded); dup {
		return duplicate(prev, name)
	}
	return nil
}

// seen records name, or returns the earlier name that is the same name.
func (k *keySet) seen(name, folded string) (prev string, dup bool) {
	stored := name
	if !isASCII(name) {
		stored = folded
	}
	if k.big == nil && k.n < smallKeys {
		for i, prev := range k.small[:k.n] {
			if sameStored(prev, stored) {
				return k.orig[i], true
			}
		}
		k.small[k.n], k.orig[k.n] = stored, name
		k.n++
		return "", false
	}
	if k.big == nil {
		k.big = make(map[string]string, max(4*smallKeys, k.hint))
		for i, prev := range k.small[:k.n] {
			k.big[foldStored(prev)] = k.orig[i]
		}
	}
	f := foldStored(folded)
	if prev, ok := k.big[f]; ok {
		return prev, true
	}
	k.big[f] = name
	return "", false
}

// sameStored reports whether two names as keySet stores them are the same
// name, without folding either again: ASCII ones are compared in place, a
// folded non-ASCII one can equal only another (the fold of an ASCII name is
// ASCII).
func sameStored(a, b string) bool {
	aASCII, bASCII := isASCII(a), isASCII(b)
	switch {
	case aASCII && bASCII:
		return compareNames(a, b)
	case aASCII != bASCII:
		return false
	}
	return a == b
}

// foldStored folds a name as keySet stores it: ASCII as added, or already
// folded; FoldName is idempotent, so a folded name needs no second pass.
func foldStored(s string) string {
	if isASCII(s) {
		return foldASCII(s)
	}
	return s
}

func duplicate(prev, name string) *Error {
	if prev == name {
		return badRequest("Duplicate parameter: %s", safeName(name))
	}
	return badRequest("Duplicate parameter: %s (the same name as %s to some backends)", safeName(name), safeName(prev))
}
