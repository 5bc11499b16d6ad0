package protocol

// Error codes (docs/protocol.md, "Errors").
const (
	CodeBadRequest   = "bad_request"   // not JSON, not an object, unknown type, missing or malformed field, bad SDP
	CodeUnauthorized = "unauthorized"  // missing, expired or bad token; the connection is then closed with 1008
	CodeForbidden    = "forbidden"     // the participant's role may not do this
	CodeNotFound     = "not_found"     // the named participant is not in the room
	CodeRoomFull     = "room_full"     // the room's participant limit or its seats are exhausted
	CodeConflict     = "conflict"      // join sent twice, a second outstanding request
	CodeInternal     = "internal"      // anything else; the server keeps running
	CodeShuttingDown = "shutting_down" // an extension: join while the relay drains or shuts down
	CodeRateLimited  = "rate_limited"  // an extension: too many messages, or joins from one address; the connection is then closed with 1008
	CodeUnavailable  = "unavailable"   // an extension: the relay is near its connection limit and takes no joins (the connection is then closed with 1008), or its cluster directory cannot be reached (the connection stays open)
	CodeRedirect     = "redirect"      // an extension: another relay of the cluster serves the room; error.url says where to send the same join; the connection is then closed with 1000
)

// WebSocket close codes the relay uses.
const (
	CloseNormal        = 1000 // after leave
	CloseUnsupported   = 1003 // a binary frame
	ClosePolicy        = 1008 // a message other than join or ping before join; unauthorized
	CloseTooBig        = 1009 // a frame over MaxMessageSize
	CloseGoingAway     = 1001 // the relay is shutting down
	CloseInternalError = 1011
)

// Close reasons (the close frame's text) that clients may act on.
const (
	CloseTextReplaced = "replaced" // a join with this session's resume token took it over (close 1000)
	CloseTextRedirect = "redirect" // the room is served by another relay: error code redirect or a redirect message came first (close 1000)
)
