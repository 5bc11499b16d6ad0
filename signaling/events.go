package signaling

import (
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
	"github.com/pion/webrtc/v4"
)

// message turns an sfu event into its protocol message.
func message(ev sfu.Event) any {
	switch e := ev.(type) {
	case sfu.JoinedEvent:
		m := protocol.Joined{
			Header:       protocol.Header{Type: protocol.TypeJoined, ID: e.RequestID},
			Version:      protocol.Version,
			Room:         e.Room,
			Participant:  participant(e.Self),
			Participants: make([]protocol.ParticipantState, 0, len(e.Others)),
			Audience:     e.Audience,
			Resume:       e.ResumeToken,
			Resumed:      e.Resumed,
			Listen:       string(e.Listen),
		}
		for _, o := range e.Others {
			st := protocol.ParticipantState{Participant: participant(o.Info), Muted: o.Muted, Tracks: make([]protocol.Track, 0, len(o.Tracks))}
			for _, t := range o.Tracks {
				st.Tracks = append(st.Tracks, protocol.Track{ID: t.ID, Kind: t.Kind})
			}
			m.Participants = append(m.Participants, st)
		}
		return m
	case sfu.ParticipantJoinedEvent:
		return protocol.ParticipantJoined{Header: header(protocol.TypeParticipantJoined), Participant: participant(e.Participant)}
	case sfu.ParticipantLeftEvent:
		return protocol.ParticipantLeft{Header: header(protocol.TypeParticipantLeft), Participant: e.ID, Reason: string(e.Reason)}
	case sfu.TrackPublishedEvent:
		return protocol.TrackPublished{Header: header(protocol.TypeTrackPublished), Participant: e.Participant, Track: protocol.Track{ID: e.Track.ID, Kind: e.Track.Kind}}
	case sfu.TrackUnpublishedEvent:
		return protocol.TrackUnpublished{Header: header(protocol.TypeTrackUnpublished), Participant: e.Participant, Track: e.Track}
	case sfu.RoleChangedEvent:
		return protocol.RoleChanged{Header: header(protocol.TypeRoleChanged), Participant: e.Participant, Role: string(e.Role)}
	case sfu.MicRequestedEvent:
		return protocol.MicRequested{Header: header(protocol.TypeMicRequested), Participant: e.Participant}
	case sfu.MicInvitedEvent:
		return protocol.MicInvited{Header: header(protocol.TypeMicInvited), By: e.By, Elsewhere: e.Elsewhere}
	case sfu.MicRejectedEvent:
		return protocol.MicRejected{Header: header(protocol.TypeMicRejected), By: e.By, Participant: e.Participant, Reason: string(e.Reason), PubClosed: e.PubClosed}
	case sfu.MutedEvent:
		return protocol.Muted{Header: header(protocol.TypeMuted), Participant: e.Participant, Muted: e.Muted, By: e.By}
	case sfu.KickedEvent:
		return protocol.Kicked{Header: header(protocol.TypeKicked), Reason: e.Reason}
	case sfu.SpeakersEvent:
		m := protocol.Speakers{Header: header(protocol.TypeSpeakers), Speakers: make([]protocol.Speaker, len(e.Speakers))}
		for i, s := range e.Speakers {
			m.Speakers[i] = protocol.Speaker{Participant: s.Participant, Level: s.Level}
		}
		return m
	case sfu.PKInvitedEvent:
		return protocol.PKInvited{Header: header(protocol.TypePKInvited), Room: e.Room, By: participant(e.By)}
	case sfu.PKStartedEvent:
		return protocol.PKStarted{Header: header(protocol.TypePKStarted), Room: e.Room}
	case sfu.PKRejectedEvent:
		return protocol.PKRejected{Header: header(protocol.TypePKRejected), Room: e.Room, Reason: string(e.Reason)}
	case sfu.PKEndedEvent:
		return protocol.PKEnded{Header: header(protocol.TypePKEnded), Room: e.Room, Reason: string(e.Reason)}
	case sfu.AudienceEvent:
		return protocol.Audience{Header: header(protocol.TypeAudience), Count: e.Count}
	case sfu.DescriptionEvent:
		return protocol.SessionDescription{Header: protocol.Header{Type: e.Type.String(), ID: e.RequestID}, PC: string(e.PC), SDP: e.SDP}
	case sfu.CandidateEvent:
		return protocol.Candidate{Header: header(protocol.TypeCandidate), PC: string(e.PC), Candidate: toProtocol(e.Candidate)}
	}
	return nil
}

func header(typ string) protocol.Header { return protocol.Header{Type: typ} }

func participant(i sfu.Info) protocol.Participant {
	return protocol.Participant{ID: i.ID, Name: i.Name, Role: string(i.Role), Room: i.Room}
}

func toProtocol(c *webrtc.ICECandidateInit) *protocol.ICECandidate {
	if c == nil {
		return nil
	}
	return &protocol.ICECandidate{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
}

func fromProtocol(c *protocol.ICECandidate) *webrtc.ICECandidateInit {
	if c == nil {
		return nil
	}
	return &webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
}
