package gctune

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeForms is appended to parse errors so an operator can fix the flag
// without reading the source.
const sizeForms = "want a non-negative integer with an optional unit: " +
	"B; K, M, G, T (powers of 1000, optional B: KB, MB, ...); " +
	"Ki, Mi, Gi, Ti (powers of 1024, optional B: KiB, MiB, ...); " +
	"unit case-insensitive, e.g. 1500000, 64KB, 2G, 512MiB, 1GiB"

// sizeUnits maps a lower-cased unit to its multiplier.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6,
	"g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20,
	"gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
}

// ParseBytes parses a size such as "512MiB", "1GiB", "2G", "1500000" or
// "64KB": SI K/M/G/T are powers of 1000, KiB/MiB/GiB/TiB powers of 1024, the
// unit is case-insensitive and its trailing B optional. It accepts every form
// Go's GOMEMLIMIT accepts, plus the SI units.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%w %q: %s", ErrBadSize, s, sizeForms)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q: too large: %s", ErrBadSize, s, sizeForms)
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("%w %q: unknown unit: %s", ErrBadSize, s, sizeForms)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%w %q: too large: %s", ErrBadSize, s, sizeForms)
	}
	return n * mult, nil
}
