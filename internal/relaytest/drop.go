package relaytest

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// DropIncoming is an interceptor factory for client.Config.ReceiveInterceptor,
// to simulate loss on a subscriber's connection: every incoming RTP packet
// for which drop returns true is dropped before the interceptors after it
// (the NACK generator, receiver reports) see it. onRTCP, if not nil, sees
// every batch of RTCP the connection sends (to count its NACKs).
func DropIncoming(drop func(ssrc uint32, seq uint16) bool, onRTCP func([]rtcp.Packet)) interceptor.Factory {
	return dropFactory{drop: drop, onRTCP: onRTCP}
}

type dropFactory struct {
	drop   func(ssrc uint32, seq uint16) bool
	onRTCP func([]rtcp.Packet)
}

func (f dropFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &dropInterceptor{f: f}, nil
}

type dropInterceptor struct {
	interceptor.NoOp
	f dropFactory
}

func (i *dropInterceptor) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, a, err := r.Read(b, a)
			if err != nil {
				return n, a, err
			}
			var h rtp.Header
			if _, err := h.Unmarshal(b[:n]); err == nil && i.f.drop(h.SSRC, h.SequenceNumber) {
				continue
			}
			return n, a, nil
		}
	})
}

// BindRTCPWriter wraps the writer nearest the network (the client adds
// this interceptor first), through which the NACK generator writes.
func (i *dropInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	if i.f.onRTCP == nil {
		return w
	}
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		i.f.onRTCP(pkts)
		return w.Write(pkts, a)
	})
}
