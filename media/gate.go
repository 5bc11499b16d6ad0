package media

import "sync/atomic"

// Gate stops some of a track's down tracks without muting the track: the
// down tracks made with it (DownTrackParams.Gate) write nothing while it
// is muted, and the track's reader, its other down tracks and its taps go
// on. The room layer uses one per room for each track published in
// another room (a remote publisher muted in one room only). The zero
// Gate is open; a nil *Gate is always open.
type Gate struct{ muted atomic.Bool }

// SetMuted closes (true) or opens the gate from the next packet on.
func (g *Gate) SetMuted(muted bool) { g.muted.Store(muted) }

// Muted reports whether the gate is closed; false for a nil gate.
func (g *Gate) Muted() bool { return g != nil && g.muted.Load() }
