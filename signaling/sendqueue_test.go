package signaling

import (
	"fmt"
	"testing"
)

func TestSendQueue(t *testing.T) {
	q := newSendQueue(3)
	if q.msgs != nil {
		t.Fatal("a new queue holds a buffer before anything is queued")
	}
	for i := range 3 {
		if !q.push(fmt.Appendf(nil, "m%d", i)) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	if q.push([]byte("over")) {
		t.Fatal("a 4th message was queued with a bound of 3")
	}
	batch := q.take()
	if got := fmt.Sprintf("%s", batch); got != "[m0 m1 m2]" {
		t.Fatalf("took %s, want [m0 m1 m2] in order", got)
	}
	// While the batch is being written it still counts: a client that
	// does not read cannot make the relay hold twice the bound.
	if q.push([]byte("m3")) {
		t.Fatal("queued past the bound while a full batch was being written")
	}
	q.done(batch)
	if !q.push([]byte("m4")) || q.len() != 1 {
		t.Fatalf("after the batch was written: push refused or len %d, want 1", q.len())
	}
	if got := fmt.Sprintf("%s", q.take()); got != "[m4]" {
		t.Fatalf("took %s, want [m4]", got)
	}
}
