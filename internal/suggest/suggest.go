// Package suggest finds the closest of a list of known names to a misspelled
// one, for "did you mean" hints in error messages.
package suggest

import "strings"

// Closest returns the option nearest to word by edit distance (case
// insensitive), or "" when none is close enough to be a likely typo: at most
// a third of the longer name's length, and at most 3 edits. An exact match is
// not a suggestion either.
func Closest(word string, options []string) string {
	best, bestDist := "", 0
	w := strings.ToLower(word)
	for _, o := range options {
		if o == word {
			return ""
		}
		d := distance(w, strings.ToLower(o))
		limit := min(3, max(1, max(len(w), len(o))/3))
		if d <= limit && (best == "" || d < bestDist) {
			best, bestDist = o, d
		}
	}
	return best
}

// distance is the Damerau-Levenshtein distance (with adjacent
// transpositions) between a and b, in bytes.
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
