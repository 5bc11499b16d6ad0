package gctune

import (
	"errors"
	"testing"
)

func TestParseBytes(t *testing.T) {
	good := []struct {
		name string
		in   string
		want int64
	}{
		{"plain", "1500000", 1500000},
		{"zero", "0", 0},
		{"bytes", "1024B", 1024},
		{"SI kilo with B", "64KB", 64000},
		{"SI giga no B", "2G", 2000000000},
		{"SI lower case", "3mb", 3000000},
		{"SI tera", "1T", 1000000000000},
		{"MiB", "512MiB", 512 << 20},
		{"GiB", "1GiB", 1 << 30},
		{"Gi no B", "2Gi", 2 << 30},
		{"KiB lower case", "4kib", 4096},
		{"TiB", "1TiB", 1 << 40},
		{"space around", " 256 MiB ", 256 << 20},
		{"max int64", "9223372036854775807", 9223372036854775807},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBytes(tc.in)
			if err != nil {
				t.Fatalf("ParseBytes(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseBytes(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}

	bad := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"unit only", "MiB"},
		{"negative", "-1"},
		{"plus sign", "+5"},
		{"fraction", "1.5G"},
		{"unknown unit", "10XB"},
		{"bits are not bytes", "10Mbit"},
		{"int64 overflow", "9223372036854775808"},
		{"unit overflow", "9000000TiB"},
		{"two numbers", "1 2"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBytes(tc.in)
			if !errors.Is(err, ErrBadSize) {
				t.Fatalf("ParseBytes(%q) error = %v, want ErrBadSize", tc.in, err)
			}
		})
	}
}
