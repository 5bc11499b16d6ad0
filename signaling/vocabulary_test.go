package signaling

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
	"github.com/pion/webrtc/v4"
)

// The sfu and the protocol each name roles, reasons, connections and
// events; signaling joins them. These tests keep the two vocabularies one:
// a value added on one side without the other fails here.

// sampleEvents has one value of every sfu event type.
var sampleEvents = []sfu.Event{
	sfu.JoinedEvent{Room: "r", Self: sfu.Info{ID: "p_1", Name: "a", Role: sfu.RoleHost}, Listen: sfu.ListenTracks,
		Others: []sfu.State{{Info: sfu.Info{ID: "p_2", Name: "b", Role: sfu.RoleGuest}, Tracks: []sfu.TrackInfo{{ID: "t_1", Kind: "audio"}}}}},
	sfu.ParticipantJoinedEvent{Participant: sfu.Info{ID: "p_2", Name: "b", Role: sfu.RoleGuest}},
	sfu.ParticipantJoinedEvent{Participant: sfu.Info{ID: "p_9", Name: "z", Role: sfu.RoleRemote, Room: "other"}},
	sfu.ParticipantLeftEvent{ID: "p_2", Reason: sfu.ReasonKicked},
	sfu.TrackPublishedEvent{Participant: "p_2", Track: sfu.TrackInfo{ID: "t_1", Kind: "audio"}},
	sfu.TrackUnpublishedEvent{Participant: "p_2", Track: "t_1"},
	sfu.AudienceEvent{Count: 3},
	sfu.DescriptionEvent{PC: sfu.Sub, Type: webrtc.SDPTypeOffer, SDP: "v=0"},
	sfu.DescriptionEvent{PC: sfu.Pub, Type: webrtc.SDPTypeAnswer, SDP: "v=0", RequestID: "o1"},
	sfu.CandidateEvent{PC: sfu.Sub, Candidate: &webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}},
	sfu.CandidateEvent{PC: sfu.Pub},
	sfu.RoleChangedEvent{Participant: "p_2", Role: sfu.RoleAudience},
	sfu.MicRequestedEvent{Participant: "p_3"},
	sfu.MicInvitedEvent{By: "p_1"},
	sfu.MicRejectedEvent{Participant: "p_3", Reason: sfu.MicTimeout},
	sfu.MutedEvent{Participant: "p_2", Muted: true, By: "p_1"},
	sfu.KickedEvent{Reason: "spam"},
	sfu.SpeakersEvent{Speakers: []sfu.Speaker{{Participant: "p_2", Level: 0.8}}},
	sfu.PKInvitedEvent{Room: "other", By: sfu.Info{ID: "p_7", Name: "h", Role: sfu.RoleHost}},
	sfu.PKStartedEvent{Room: "other"},
	sfu.PKRejectedEvent{Room: "other", Reason: sfu.PKTimeout},
	sfu.PKEndedEvent{Room: "other", Reason: sfu.PKEndedBy},
}

// sfuSource parses the sfu package's non-test files.
func sfuSource(t *testing.T) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("..", "sfu", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatal("found no sfu source files")
	}
	return files
}

// TestEveryEventHasAMessage: every type in sfu with an isEvent method has
// a sample above, and every sample maps to a protocol message of a type
// protocol knows, which survives a round trip through JSON.
func TestEveryEventHasAMessage(t *testing.T) {
	var declared []string
	for _, f := range sfuSource(t) {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "isEvent" || fn.Recv == nil {
				continue
			}
			if id, ok := fn.Recv.List[0].Type.(*ast.Ident); ok {
				declared = append(declared, id.Name)
			}
		}
	}
	sampled := map[string]bool{}
	for _, ev := range sampleEvents {
		sampled[reflect.TypeOf(ev).Name()] = true
	}
	for _, name := range declared {
		if !sampled[name] {
			t.Errorf("sfu.%s has no sample in sampleEvents: add one, and its case in message()", name)
		}
	}
	if len(declared) < 15 {
		t.Fatalf("found only %d sfu event types (%v): the source scan is broken", len(declared), declared)
	}

	for _, ev := range sampleEvents {
		name := reflect.TypeOf(ev).Name()
		t.Run(name, func(t *testing.T) {
			msg := message(ev)
			if msg == nil {
				t.Fatalf("message(%T) = nil: an event the client is never told", ev)
			}
			b, err := json.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			var h protocol.Header
			if err := json.Unmarshal(b, &h); err != nil {
				t.Fatal(err)
			}
			into, ok := protocol.NewServerMessage(h.Type)
			if !ok {
				t.Fatalf("%T becomes type %q, which protocol does not know: %s", ev, h.Type, b)
			}
			if err := json.Unmarshal(b, into); err != nil {
				t.Fatalf("%s does not decode as %T: %v", b, into, err)
			}
		})
	}
}

// TestEnumsMatchProtocol: every constant of sfu's Role, Reason, PC,
// MicReason, Listen and PKReason types (and the mix's participant id) equals the
// protocol constant of the same meaning, and each type's constants are
// listed here (so a new one must be paired).
func TestEnumsMatchProtocol(t *testing.T) {
	pairs := []struct {
		sfu, protocol string
	}{
		{string(sfu.RoleHost), protocol.RoleHost},
		{string(sfu.RoleGuest), protocol.RoleGuest},
		{string(sfu.RoleAudience), protocol.RoleAudience},
		{string(sfu.RoleRemote), protocol.RoleRemote},
		{string(sfu.ReasonLeft), protocol.ReasonLeft},
		{string(sfu.ReasonKicked), protocol.ReasonKicked},
		{string(sfu.ReasonTimeout), protocol.ReasonTimeout},
		{string(sfu.ReasonReplaced), protocol.ReasonReplaced},
		{string(sfu.ReasonPKEnded), protocol.ReasonPKEnded},
		{string(sfu.PKRejected), protocol.PKReasonRejected},
		{string(sfu.PKTimeout), protocol.PKReasonTimeout},
		{string(sfu.PKCancelled), protocol.PKReasonCancelled},
		{string(sfu.PKNoHost), protocol.PKReasonNoHost},
		{string(sfu.PKEndedBy), protocol.PKReasonEnded},
		{string(sfu.PKLinkLost), protocol.PKReasonLinkLost},
		{string(sfu.Sub), protocol.PCSub},
		{string(sfu.Pub), protocol.PCPub},
		{string(sfu.MicRejected), protocol.MicReasonRejected},
		{string(sfu.MicCancelled), protocol.MicReasonCancelled},
		{string(sfu.MicTimeout), protocol.MicReasonTimeout},
		{string(sfu.MicNoHost), protocol.MicReasonNoHost},
		{string(sfu.ListenMix), protocol.ListenMix},
		{string(sfu.ListenTracks), protocol.ListenTracks},
		{sfu.MixParticipant, protocol.ParticipantMix},
	}
	// Internal values that never reach a client as such.
	internal := map[string]bool{"ReasonShutdown": true}
	paired := map[string]bool{}
	for _, p := range pairs {
		if p.sfu != p.protocol {
			t.Errorf("sfu says %q where protocol says %q", p.sfu, p.protocol)
		}
		paired[p.sfu] = true
	}

	enums := []string{"Role", "Reason", "PC", "MicReason", "Listen", "PKReason"}
	found := 0
	for _, f := range sfuSource(t) {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				typ, ok := vs.Type.(*ast.Ident)
				if !ok || !slices.Contains(enums, typ.Name) {
					continue
				}
				for i, n := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						t.Errorf("sfu.%s is not a string literal", n.Name)
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					found++
					if !paired[v] && !internal[n.Name] {
						t.Errorf("sfu.%s (%s %q) has no protocol constant paired in this test", n.Name, typ.Name, v)
					}
				}
			}
		}
	}
	if found < len(pairs) {
		t.Fatalf("found %d sfu constants, fewer than the %d pairs: the source scan is broken", found, len(pairs))
	}
	for _, r := range sfu.Roles() {
		if !paired[string(r)] {
			t.Errorf("sfu.Roles() lists %q, which is not paired", r)
		}
	}
}

// TestJoinedCarriesListen: what a participant receives reaches joined.
func TestJoinedCarriesListen(t *testing.T) {
	for _, l := range []sfu.Listen{sfu.ListenMix, sfu.ListenTracks} {
		m, ok := message(sfu.JoinedEvent{Room: "r", Listen: l}).(protocol.Joined)
		if !ok || m.Listen != string(l) {
			t.Errorf("joined for listen %q: %+v", l, m)
		}
	}
}
