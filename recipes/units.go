package recipes

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count written in a recipe as "512MiB", "2GiB", "10G" or a
// plain number of bytes.
type Size int64

// Duration is a time.Duration written in a recipe as a Go duration ("90s",
// "1m30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit such as \"90s\" or \"30m\"", b)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// maxSize is the largest size a recipe may name: 64 TiB, beyond which
// qemu-img and most file systems give up.
const maxSize = 64 << 40

// ParseSize parses "2GiB", "512M" or "1073741824".
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	factor := int64(1)
	num := s
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, factor = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("invalid size %q: use a number with a unit such as \"512MiB\" or \"10GiB\"", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("invalid size %q: must be greater than zero", s)
	}
	v := n * float64(factor)
	if v > maxSize {
		return 0, fmt.Errorf("invalid size %q: larger than the 64TiB maximum", s)
	}
	return Size(v), nil
}

// UnmarshalText parses a size string.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MiB returns the size in whole mebibytes, rounded up.
func (s Size) MiB() int64 { return (int64(s) + (1<<20 - 1)) >> 20 }

// String formats s with the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(s) >= u.factor && int64(s)%u.factor == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.factor, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", int64(s))
}
