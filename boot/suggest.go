package boot

import "strings"

// nearestTag returns the canonical tag name closest to name by edit
// distance, ignoring case, or "" when no name is close enough to be a
// likely typo. Close enough means at most one edit per three characters,
// and at least one edit.
func nearestTag(name string) string {
	lower := strings.ToLower(name)
	if len(lower) > 64 {
		return ""
	}
	limit := max(1, len(lower)/3)
	best, bestDistance := "", limit+1
	for _, candidate := range tagNames {
		d := editDistance(lower, strings.ToLower(candidate))
		if d < bestDistance {
			best, bestDistance = candidate, d
		}
	}
	return best
}

// editDistance returns the Levenshtein distance between two ASCII strings.
func editDistance(a, b string) int {
	previous := make([]int, len(b)+1)
	current := make([]int, len(b)+1)
	for j := range previous {
		previous[j] = j
	}
	for i := 1; i <= len(a); i++ {
		current[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			current[j] = min(previous[j]+1, current[j-1]+1, previous[j-1]+cost)
		}
		previous, current = current, previous
	}
	return previous[len(b)]
}
