// Package browsertest drives the relay's page (package web) in a real
// Chromium with chromedp, against an in-process relay on loopback (and,
// in TestBlockedUDP, in a network namespace whose UDP to the relay is
// dropped: root, ip and nft needed, else it skips). It has tests only, so
// chromedp never reaches the relay binary.
//
// Chromium is Debian's package "chromium". Without it the tests skip,
// unless CI=true, where a missing browser fails them. With
// UPDATE_SCREENSHOTS=1 the tests write their screenshots to
// docs/screenshots/; otherwise to a temporary directory.
package browsertest
