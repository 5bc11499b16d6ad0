package sfu

import "strings"

// withPtime adds a=ptime:10 to every audio m-section of sdp that lacks a
// ptime. Chromium sends 10 ms Opus frames only when the description it
// receives asks for them; pion does not write ptime itself, so the relay
// adds it to the text it sends (pion's own copy needs no ptime).
func withPtime(sdp string) string {
	lines := strings.SplitAfter(sdp, "\n")
	var b strings.Builder
	b.Grow(len(sdp) + 64)
	inAudio, hasPtime := false, false
	flush := func() {
		if inAudio && !hasPtime {
			b.WriteString("a=ptime:10\r\n")
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "m=") {
			flush()
			inAudio, hasPtime = strings.HasPrefix(l, "m=audio "), false
		} else if strings.HasPrefix(l, "a=ptime:") {
			hasPtime = true
		}
		if l != "" {
			b.WriteString(l)
		}
	}
	if len(lines) > 0 && !strings.HasSuffix(sdp, "\n") && sdp != "" {
		b.WriteString("\r\n")
	}
	flush()
	return b.String()
}

// sendingSections counts the m-sections of an offer that send media
// (direction sendrecv or sendonly, the default being sendrecv): the tracks
// the client would publish. Data channels do not count.
func sendingSections(sdp string) int {
	n := 0
	inMedia, sends := false, true
	flush := func() {
		if inMedia && sends {
			n++
		}
	}
	for l := range strings.Lines(sdp) {
		l = strings.TrimRight(l, "\r\n")
		switch {
		case strings.HasPrefix(l, "m="):
			flush()
			inMedia = strings.HasPrefix(l, "m=audio ") || strings.HasPrefix(l, "m=video ")
			sends = true
		case l == "a=recvonly" || l == "a=inactive":
			sends = false
		}
	}
	flush()
	return n
}
