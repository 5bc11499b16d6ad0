package loadtest

import "testing"

func TestFrameLogSearch(t *testing.T) {
	l := newFrameLog("p", 0, 0, 0, 10)
	for k := int64(0); k < 5; k++ {
		l.stamp(k, 100+k*10, k == 2)
	}
	tests := []struct {
		name string
		got  int64
		want int64
	}{
		{"first at or after the first", l.firstAtOrAfter(100), 0},
		{"first at or after, between", l.firstAtOrAfter(105), 1},
		{"first after all", l.firstAtOrAfter(1000), 5},
		{"last at or before, exact", l.lastAtOrBefore(120), 2},
		{"last at or before, between", l.lastAtOrBefore(135), 3},
		{"last before all", l.lastAtOrBefore(50), -1},
		{"dropped in range", l.droppedIn(0, 4), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %d, want %d", tt.got, tt.want)
			}
		})
	}
	if l.stamp(10, 1, false) {
		t.Fatal("stamp past the end succeeded")
	}
	if _, _, ok := l.sent(7); ok {
		t.Fatal("an unstamped frame reads as sent")
	}
}

func TestChurnNameStaysShort(t *testing.T) {
	name := "a11"
	for n := 1; n <= 10000; n++ {
		name = churnName(name, n)
	}
	if name != "a11-c10000" {
		t.Fatalf("after 10,000 replacements the name is %q, want a11-c10000", name)
	}
}
