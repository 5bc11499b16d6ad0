package signaling

import "sync"

// sendQueue holds encoded messages for a session's writer. It grows with
// what is queued, up to max, so that a connection that has sent nothing
// yet (most of a flood of idle connections) holds no buffer at all.
type sendQueue struct {
	mu    sync.Mutex
	msgs  [][]byte // guarded by mu; taken whole by the writer
	spare [][]byte // guarded by mu; the writer's last batch, emptied, for reuse
	taken int      // guarded by mu; messages the writer took and has not finished writing
	max   int      // the most messages queued or being written at once
}

func newSendQueue(max int) *sendQueue {
	return &sendQueue{max: max}
}

// push queues msg without blocking; false if max messages are queued or
// being written already (the client does not read).
func (q *sendQueue) push(msg []byte) bool {
	q.mu.Lock()
	if len(q.msgs)+q.taken >= q.max {
		q.mu.Unlock()
		return false
	}
	if q.msgs == nil && q.spare != nil {
		q.msgs, q.spare = q.spare, nil
	}
	q.msgs = append(q.msgs, msg)
	q.mu.Unlock()
	return true
}

// take returns every queued message, oldest first; the writer hands the
// slice back with done once written.
func (q *sendQueue) take() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs := q.msgs
	q.msgs = nil
	q.taken = len(msgs)
	return msgs
}

// done gives back a batch take returned, for the next pushes to reuse.
func (q *sendQueue) done(batch [][]byte) {
	clear(batch)
	q.mu.Lock()
	q.spare, q.taken = batch[:0], 0
	q.mu.Unlock()
}

// len is how many messages are queued or being written.
func (q *sendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs) + q.taken
}
