package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

const sizeAllowed = "a whole number of bytes, optionally with a binary unit K, M, G, T, KiB, MiB, GiB or TiB, as 512, 64MiB or 1GiB"

// units are binary: K and KiB are both 1024.
var units = map[string]int64{
	"":  1,
	"B": 1,
	"K": 1 << 10, "KI": 1 << 10, "KIB": 1 << 10,
	"M": 1 << 20, "MI": 1 << 20, "MIB": 1 << 20,
	"G": 1 << 30, "GI": 1 << 30, "GIB": 1 << 30,
	"T": 1 << 40, "TI": 1 << 40, "TIB": 1 << 40,
}

// ParseSize parses a size in bytes: a whole number with an optional binary
// unit (K, M, G, T, or KiB, MiB, GiB, TiB; case-insensitive; a space
// between number and unit is allowed). Decimal units (KB, MB, ...) are
// refused as ambiguous, as are fractions and negative numbers.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("no number")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, err
	}
	mult, ok := units[strings.ToUpper(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, errors.New("unknown unit")
	}
	if n > math.MaxInt64/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// FormatSize renders a byte count in the largest binary unit that divides
// it exactly: 1073741824 → "1GiB", 1536 → "1536".
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		v    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
