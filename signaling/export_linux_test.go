//go:build linux

package signaling

// SetParkHook makes f run in the upgrade's handler just before the
// connection is parked (registered for readability), until restore.
func SetParkHook(f func()) (restore func()) {
	testHookPark.Store(&f)
	return func() { testHookPark.Store(nil) }
}
