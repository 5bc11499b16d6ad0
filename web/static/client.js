// RelayClient speaks signaling protocol version 1 (docs/protocol.md) to the
// relay: one WebSocket, and up to two peer connections named by "pc":
//
//   sub  offered by the server; everything this participant receives.
//   pub  offered by this client, only for role host or guest; the microphone.
//
// Every server message is dispatched as a CustomEvent named by its "type"
// (joined, participant_joined, draining, error, ...) with the message as
// detail, and also as a "message" event. Events the client adds itself:
//
//   track        {track, stream, streamId, participant, receiver, transceiver}
//                a remote track on sub; streamId is the publisher's id.
//   trackended   {track, streamId, participant}: the track was removed from
//                its stream or ended (the server renegotiated it away, or
//                the sub connection was closed).
//   localtrack   {track, stream}: the microphone is being published.
//   localtrackended {track}
//   publisherror {error}: getUserMedia or the pub negotiation failed; the
//                session stays up, so the page can explain and offer a retry.
//   statechange  {ws, sub, pub, rtt, reconnecting}: WebSocket or ICE state
//                changed, or a reconnection began or ended.
//   reconnecting {attempt, delay, code, reason}: the WebSocket closed
//                unexpectedly; attempt number `attempt` starts in `delay` ms
//                (code and reason are the lost connection's close).
//   resumed      {iceRestart, attempt, joined}: the relay resumed the session
//                (same participant, tracks and mic state); the peer
//                connections were kept and ICE restarts on both.
//   rejoined     {previous, attempt, joined}: the relay no longer knew the
//                session and joined afresh (a new participant id; previous is
//                the old one); the peer connections were replaced and the
//                microphone is published again if the role allows.
//   reconnectfailed {attempts, error}: reconnecting gave up (the window
//                passed or the relay refused the join); "close" follows.
//   close        {code, reason, wasClean}: the session is over: the WebSocket
//                closed and will not be reopened (after leave, kicked,
//                replaced, a 1008 or 1001 close, draining, or a failed
//                reconnection; code and reason are the last close's).
//
// Relay clusters (docs/cluster.md): a join answered with error code
// redirect is sent again to the relay it names (at most 3 hops; the page
// sees only the final joined or error), and a redirect message (the room
// moved) makes the reconnection join the room at its new relay.
//
// Reconnection (option reconnect, on by default): when the WebSocket of a
// joined session closes unexpectedly, the client reconnects with backoff
// (reconnectDelay doubling up to reconnectMaxDelay, for at most
// reconnectWindow ms: the relay's grace period), sends join again with the
// same room, name, role and token plus the relay's resume token and
// ice_restart, and keeps its peer connections. Requests outstanding when
// the connection drops are rejected with an error named
// "ConnectionLostError" (a pub offer in flight is made again after the
// resume instead). simulateDisconnect() drops the WebSocket without a
// leave, for tests.

const PROTOCOL_VERSION = 1;
const PING_INTERVAL_MS = 20_000;
const REQUEST_TIMEOUT_MS = 15_000;
// Reconnection: 250 ms, 500 ms, 1 s, 2 s, 4 s, ... within the relay's
// default grace period of 10 s.
const RECONNECT_DELAY_MS = 250;
const RECONNECT_MAX_DELAY_MS = 4_000;
const RECONNECT_WINDOW_MS = 10_000;
const ATTEMPT_TIMEOUT_MS = 5_000;
// A relay cluster redirects a join to the relay that serves its room;
// more hops than this is a loop.
const MAX_REDIRECTS = 3;
// How long an invitee's mic_accept waits for its early pub to connect.
const EARLY_ACCEPT_WAIT_MS = 3_000;

const PUBLISHING_ROLES = new Set(["host", "guest"]);

/** Roles that open a pub connection. */
export function canPublish(role) {
  return PUBLISHING_ROLES.has(role);
}

/** The relay's WebSocket URL on the page's own origin. */
export function defaultRelayURL(loc = globalThis.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/ws`;
}

/** An error the relay reported: code and message as sent, id if any. */
export class RelayError extends Error {
  constructor(msg) {
    super(`${msg.code}: ${msg.message}`);
    this.name = "RelayError";
    this.code = msg.code;
    this.relayMessage = msg.message;
    this.id = msg.id;
    // With code "redirect" (a relay cluster): the relay that serves the room.
    this.url = typeof msg.url === "string" ? msg.url : "";
  }
}

export const DEFAULT_AUDIO_CONSTRAINTS = Object.freeze({
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
});

export class RelayClient extends EventTarget {
  #opts;
  #url = ""; // the relay the session is on (after a cluster's redirects)
  #entryURL = ""; // the URL given to connect(): in a cluster, any relay
  #ws = null;
  #wsJoined = false; // joined arrived on the current #ws
  #nextID = 1;
  #pending = new Map(); // id -> {resolve, reject, timer}
  #pingTimer = null;
  #pingSentAt = new Map(); // ping id -> performance.now()
  #rtt = null;
  #sub = null; // peer slot, see #newSlot
  #pub = null;
  #micStream = null;
  #publishing = null; // the promise of an ongoing publishMicrophone
  #micPending = false; // this audience member's mic request or invitation is pending
  #micAfterMove = false; // an edge moved this listener to the room's owner for its mic request: ask again there
  #inviteElsewhere = false; // this listener's invitation is from a host on another relay (mic_invited elsewhere): accepting moves it there
  #acceptAfterMove = ""; // an edge moved this listener to the room's owner to accept its invitation: this ticket, sent there in mic_accept
  #early = false; // #pub is an early pub: negotiated while pending, microphone disabled until on the mic
  #closed = false; // the session is over (left, or closed for good)
  #joinReq = null; // {room, name, role, token, listen} of the last join that succeeded
  #resume = ""; // joined.resume: the secret that resumes this session
  #audienceListen = "tracks"; // what this participant gets while in the audience, as far as known
  #joinedIceServers = []; // joined.ice_servers: the relay's TURN servers with this participant's credentials
  #final = ""; // why the next close must not be retried: kicked, replaced, draining
  #reconnect = null; // {attempt, code, reason, timer, wake, fatal} while reconnecting

  /** The participant as joined reported it ({id, name, role}), or null. */
  self = null;
  /** The room name as joined reported it, or "". */
  room = "";
  /**
   * What the sub connection carries, as joined and role changes say:
   * "mix" (one track, the room's audience mix, participant "mix") or
   * "tracks" (one per publisher); "" before joined.
   */
  listen = "";

  /**
   * @param {object} [opts]
   * @param {RTCIceServer[]} [opts.iceServers]  for both peer connections
   * @param {boolean} [opts.autoPublish=true]   publish the microphone whenever
   *   this participant's role is host or guest, stop when it is not
   * @param {MediaTrackConstraints} [opts.audio] getUserMedia audio constraints
   * @param {number} [opts.pingInterval=20000]  ms between pings
   * @param {boolean} [opts.reconnect=true]     reconnect and resume after an
   *   unexpected close of a joined session's WebSocket
   * @param {number} [opts.reconnectDelay=250]  ms before the first attempt;
   *   doubles with every attempt
   * @param {number} [opts.reconnectMaxDelay=4000] the longest wait between attempts
   * @param {number} [opts.reconnectWindow=10000] ms after the drop within which
   *   attempts start: the relay keeps a lost participant this long (-grace)
   * @param {number} [opts.attemptTimeout=5000] ms one attempt (open and join) may take
   * @param {string[]} [opts.relays=[]] other relays of a cluster (their /ws
   *   URLs): reconnection attempts go round the session's relay, the one
   *   connect() was given, and these, so that a listener whose relay died
   *   hears again through another (docs/cluster.md, failures)
   */
  constructor(opts = {}) {
    super();
    this.#opts = {
      iceServers: [],
      autoPublish: true,
      audio: DEFAULT_AUDIO_CONSTRAINTS,
      pingInterval: PING_INTERVAL_MS,
      reconnect: true,
      reconnectDelay: RECONNECT_DELAY_MS,
      reconnectMaxDelay: RECONNECT_MAX_DELAY_MS,
      reconnectWindow: RECONNECT_WINDOW_MS,
      attemptTimeout: ATTEMPT_TIMEOUT_MS,
      relays: [],
      ...opts,
    };
  }

  // ---- connection ----

  /** Opens the WebSocket; resolves when it is open. */
  connect(url = defaultRelayURL()) {
    if (this.#ws || this.#reconnect) return Promise.reject(new Error("already connected"));
    this.#closed = false;
    this.#final = "";
    this.#joinReq = null;
    this.#resume = "";
    this.self = null;
    this.room = "";
    this.listen = "";
    this.#url = url;
    this.#entryURL = url;
    return this.#open(url);
  }

  // #open opens a WebSocket as the current one. Events of a socket that is
  // no longer current (given up on by a reconnection) are ignored.
  #open(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      this.#ws = ws;
      this.#wsJoined = false;
      let opened = false;
      ws.addEventListener("open", () => {
        if (ws !== this.#ws) return;
        opened = true;
        this.#startPing();
        this.#emitState();
        resolve();
      });
      ws.addEventListener("message", (e) => {
        if (ws === this.#ws) this.#onMessage(e.data);
      });
      ws.addEventListener("error", () => {
        if (!opened) reject(new Error(`cannot connect to ${url}`));
      });
      ws.addEventListener("close", (e) => {
        if (!opened) reject(new Error(`cannot connect to ${url} (code ${e.code})`));
        if (ws === this.#ws) this.#onClose(e);
      });
      this.#emitState();
    });
  }

  /**
   * Sends join and resolves with the joined message; rejects with a
   * RelayError if the relay refuses. The sub offer follows on its own; with
   * autoPublish, the microphone is published if the granted role allows.
   * listen ("mix" or "tracks") says what to receive while in the audience;
   * left out, the relay's default (tracks unless its operator says mix).
   */
  async join({ room, name, role = "audience", token, listen } = {}) {
    const msg = { type: "join", room, name, role, version: PROTOCOL_VERSION };
    if (token) msg.token = token;
    if (listen) msg.listen = listen;
    const joined = await this.#joinFollowing(msg, REQUEST_TIMEOUT_MS);
    this.#joinReq = { room, name, role, token, listen };
    return joined;
  }

  // #joinFollowing sends join and, when a relay of a cluster answers with
  // error code redirect, sends the same join to the relay it names (at
  // most MAX_REDIRECTS times); the page sees only the final joined or
  // error. Later reconnections go to the relay that served the join.
  async #joinFollowing(msg, timeout) {
    for (let hop = 0; ; hop++) {
      try {
        return await this.#request(msg, timeout);
      } catch (err) {
        if (!(err instanceof RelayError) || err.code !== "redirect" || !err.url || hop >= MAX_REDIRECTS) throw err;
        // The relay closes this socket (1000, "redirect"): let it go
        // without ending the session, and join at the new relay.
        const old = this.#ws;
        this.#ws = null;
        this.#stopPing();
        if (old && old.readyState !== WebSocket.CLOSED) old.close(1000, "redirect");
        this.#url = err.url;
        await withTimeout(this.#open(err.url), timeout, "open the WebSocket");
      }
    }
  }

  /**
   * Sends leave, closes both peer connections and, soon after, the socket.
   * While reconnecting, it stops reconnecting instead (there is no joined
   * connection to send leave on: the relay lets the participant go when
   * its grace period ends).
   */
  async leave() {
    if (this.#reconnect) {
      this.#stopReconnect();
      this.#closed = true;
      const ws = this.#ws;
      this.#ws = null;
      this.#stopPing();
      if (ws && ws.readyState !== WebSocket.CLOSED) ws.close(1000, "leave");
      this.#rejectPending("left while reconnecting");
      this.#end({ code: 1000, reason: "leave", wasClean: true });
      return;
    }
    if (!this.#ws) return;
    const ws = this.#ws;
    this.#closed = true;
    // Before joined, leave would be a bad_request; closing says enough.
    const sent = this.#wsJoined && this.send({ type: "leave" });
    this.#teardownMedia();
    if (!sent && ws.readyState !== WebSocket.CLOSED) ws.close(1000, "leave");
    // The server closes with 1000 after leave; do not wait on it forever.
    await new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      const timer = setTimeout(() => {
        ws.close(1000, "leave");
        resolve();
      }, 1000);
      ws.addEventListener("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * For tests: closes the WebSocket without a leave, as a network drop
   * would (the relay keeps the participant for its grace period), and the
   * client reconnects as after any unexpected close. With forgetSession,
   * the reconnection presents a resume token the relay does not know, as
   * after the grace period: the relay joins it afresh. Returns false when
   * there is no open WebSocket.
   */
  simulateDisconnect({ forgetSession = false } = {}) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    if (forgetSession) this.#resume = `forgotten-${Math.random().toString(36).slice(2)}`;
    ws.close(4000, "simulated disconnect");
    return true;
  }

  /** Sends one message as JSON. Returns false if the socket is not open. */
  send(msg) {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * WebSocket and ICE states, the last ping round trip in ms, and whether
   * the client is reconnecting (ws is then "connecting" or "closed").
   */
  get state() {
    const ws = this.#ws;
    return {
      ws: ws ? ["connecting", "open", "closing", "closed"][ws.readyState] : "closed",
      sub: this.#sub ? this.#sub.pc.iceConnectionState : "none",
      pub: this.#pub ? this.#pub.pc.iceConnectionState : "none",
      rtt: this.#rtt,
      reconnecting: this.#reconnect !== null,
    };
  }

  /** The published microphone track, or null. */
  get micTrack() {
    return this.#micStream ? this.#micStream.getAudioTracks()[0] ?? null : null;
  }

  /** The sub and pub RTCPeerConnections (null when absent), for stats. */
  get peerConnections() {
    return { sub: this.#sub?.pc ?? null, pub: this.#pub?.pc ?? null };
  }

  /**
   * A summary of getStats on both peer connections: cumulative audio
   * counters as the browser reports them (see summarizeStats). Rates come
   * from two calls: (b.pub.packetsSent - a.pub.packetsSent) / (b.at - a.at).
   * @returns {Promise<{at: number, rtt: number|null, sub: object|null, pub: object|null}>}
   */
  async stats() {
    const { sub, pub } = this.peerConnections;
    const [subReport, pubReport] = await Promise.all([
      sub && sub.connectionState !== "closed" ? sub.getStats() : null,
      pub && pub.connectionState !== "closed" ? pub.getStats() : null,
    ]);
    return {
      at: performance.now(),
      rtt: this.#rtt,
      sub: subReport ? summarizeStats(subReport) : null,
      pub: pubReport ? summarizeStats(pubReport) : null,
    };
  }

  // ---- room actions (thin wrappers; errors arrive as "error" events) ----

  /**
   * Asks for the mic. With autoPublish the microphone is negotiated on pub
   * at once (the early pub, docs/protocol.md): disabled, so nothing of it
   * is heard, until the relay makes this participant a guest, which then
   * costs no connection set-up.
   */
  requestMic() {
    const sent = this.send({ type: "mic_request" });
    if (sent) {
      this.#micPending = true;
      this.#publishEarly();
    }
    return sent;
  }
  /** Withdraws this audience member's own mic request (or declines an invitation). */
  cancelMicRequest() { return this.#endOwnRequest(this.send({ type: "mic_reject" })); }
  /** A guest leaves the mic and goes back to the audience. */
  leaveMic() { return this.send({ type: "mic_release" }); }
  inviteToMic(participant) { return this.send({ type: "mic_invite", participant }); }
  /**
   * A host accepts participant's request; an audience member (no
   * argument) accepts its invitation. With autoPublish the invitee's
   * microphone is negotiated on pub first (the early pub), and mic_accept
   * follows once that connection is up (or failed, or after 3 s).
   */
  acceptMic(participant) {
    // An invitation from a host on another relay: the relay here moves
    // this listener there to accept, so no early pub here.
    const moves = !participant && this.#inviteElsewhere;
    if (participant || moves || !this.#micPending || !this.#opts.autoPublish || canPublish(this.self?.role)) {
      return this.send(withParticipant("mic_accept", participant));
    }
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) return false;
    const ready = this.#publishEarly().then(() => this.#pubConnected(EARLY_ACCEPT_WAIT_MS));
    ready.catch(() => {}).finally(() => this.send({ type: "mic_accept" }));
    return true;
  }
  rejectMic(participant) {
    const sent = this.send(withParticipant("mic_reject", participant));
    return participant ? sent : this.#endOwnRequest(sent);
  }

  // #endOwnRequest: this audience member withdrew its request or declined
  // its invitation; its early pub goes (the relay closes its side too).
  #endOwnRequest(sent) {
    if (sent) {
      this.#micPending = false;
      if (this.#early) this.#closePub();
    }
    return sent;
  }
  releaseMic(participant) { return this.send(withParticipant("mic_release", participant)); }
  mute(participant, muted) { return this.send({ type: "mute", participant, muted: !!muted }); }
  kick(participant, reason) {
    return this.send(reason ? { type: "kick", participant, reason } : { type: "kick", participant });
  }
  /** Cross-room co-streaming (hosts): invites room to link with this one. */
  pkInvite(room) { return this.send({ type: "pk_invite", room }); }
  /** Accepts room's invitation to link. */
  pkAccept(room) { return this.send({ type: "pk_accept", room }); }
  /** Declines room's invitation. */
  pkReject(room) { return this.send({ type: "pk_reject", room }); }
  /** Ends the link with room, or withdraws an invitation not yet answered. */
  pkEnd(room) { return this.send({ type: "pk_end", room }); }

  /** Changes the getUserMedia audio constraints for the next publish. */
  setAudioConstraints(audio) {
    this.#opts.audio = { ...audio };
  }

  // ---- publishing ----

  /**
   * Captures the microphone and offers it on pub. Resolves when the relay
   * has answered (or, if the connection dropped meanwhile, when the offer
   * is left to the reconnection to make again). Rejects (and dispatches
   * publisherror) if getUserMedia or the negotiation fails; a second call
   * while one runs joins the first.
   */
  publishMicrophone() {
    if (this.#pub) return Promise.resolve();
    if (!this.#publishing) {
      this.#publishing = this.#publish()
        .catch((error) => {
          this.#closePub();
          // Leaving or losing the role mid-way is not a failure to report.
          if (!this.#closed && canPublish(this.self?.role)) {
            this.#dispatch("publisherror", { error });
          }
          throw error;
        })
        .finally(() => {
          this.#publishing = null;
        });
    }
    return this.#publishing;
  }

  /** Stops the microphone and closes pub. The relay ends the tracks. */
  unpublish() {
    this.#closePub();
  }

  // #publishEarly negotiates pub while this audience member's request or
  // invitation is pending; a relay without the early pub answers
  // forbidden, and the microphone is published after role_changed as
  // before.
  #publishEarly() {
    if (!this.#opts.autoPublish || this.#closed || canPublish(this.self?.role)) return Promise.resolve();
    return this.publishMicrophone().catch(() => {}); // forbidden, or reported as publisherror
  }

  // #pubConnected resolves when pub is connected, fails or timeout ms pass.
  #pubConnected(timeout) {
    const pc = this.#pub?.pc;
    if (!pc) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (["connected", "failed", "closed"].includes(pc.connectionState)) {
          pc.removeEventListener("connectionstatechange", done);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        pc.removeEventListener("connectionstatechange", done);
        resolve();
      }, timeout);
      pc.addEventListener("connectionstatechange", done);
      done();
    });
  }

  // #goLive enables the early pub's microphone once this participant is
  // on the mic: the relay forwards from the next packet.
  #goLive() {
    if (!this.#early || !this.#pub || !canPublish(this.self?.role)) return;
    this.#early = false;
    const track = this.micTrack;
    if (track) {
      track.enabled = true;
      this.#dispatch("localtrack", { track, stream: this.#micStream });
    }
  }

  async #publish() {
    if (!navigator.mediaDevices?.getUserMedia) {
      const err = new Error(
        "This browser gives no microphone access here: the page must be served over HTTPS or from localhost.",
      );
      err.name = "InsecureContextError";
      throw err;
    }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { ...this.#opts.audio } });
    const [track] = stream.getAudioTracks();
    const early = !canPublish(this.self?.role);
    if (this.#closed || (early && !this.#micPending)) {
      // Left, or lost the role or the pending request, while the
      // permission prompt was up.
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    this.#micStream = stream;
    const slot = this.#newSlot("pub");
    this.#pub = slot;
    // An early pub sends a disabled track (silence) until this
    // participant is on the mic: the relay drops it anyway, but what is
    // not sent cannot be heard.
    this.#early = early;
    track.enabled = !early;
    slot.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    track.addEventListener("ended", () => this.#dispatch("localtrackended", { track }));
    if (!early) this.#dispatch("localtrack", { track, stream });

    const offer = await slot.pc.createOffer();
    await slot.pc.setLocalDescription(offer);
    // The answer arrives as a plain "answer" message, applied in #onAnswer;
    // the request only tells us whether the relay accepted the offer.
    try {
      await this.#request({ type: "offer", pc: "pub", sdp: slot.pc.localDescription.sdp });
    } catch (err) {
      // Dropped mid-way: a resume offers again (#restartPub), a fresh join
      // publishes anew.
      if (isConnectionLost(err) && this.#reconnect) return;
      throw err;
    }
    this.#goLive(); // accepted while the offer was out
  }

  // #restartPub restarts ICE on the kept pub connection after a resume: a
  // new offer with new ICE credentials, answered by the relay on its
  // existing connection. An offer the relay never answered is rolled back
  // first.
  async #restartPub() {
    const slot = this.#pub;
    if (!slot) {
      this.#syncPublishing(); // nothing published yet (or a publish in flight)
      return;
    }
    try {
      const sdp = await this.#serial(slot, async () => {
        if (slot.pc.signalingState === "have-local-offer") {
          await slot.pc.setLocalDescription({ type: "rollback" });
        }
        const offer = await slot.pc.createOffer({ iceRestart: true });
        await slot.pc.setLocalDescription(offer);
        return slot.pc.localDescription.sdp;
      });
      await this.#request({ type: "offer", pc: "pub", sdp });
    } catch (error) {
      if (slot !== this.#pub || this.#closed || isConnectionLost(error)) return; // a later resume retries
      this.#closePub();
      if (canPublish(this.self?.role)) this.#dispatch("publisherror", { error });
    }
  }

  #closePub() {
    if (this.#micStream) {
      for (const t of this.#micStream.getTracks()) {
        t.stop();
        this.#dispatch("localtrackended", { track: t });
      }
      this.#micStream = null;
    }
    if (this.#pub) {
      this.#pub.pc.close();
      this.#pub = null;
      this.#early = false;
      this.#emitState();
    }
  }

  #syncPublishing() {
    if (!this.#opts.autoPublish || this.#closed) return;
    if (canPublish(this.self?.role)) {
      this.#goLive();
      this.publishMicrophone().catch(() => {}); // reported as publisherror
    } else if (!this.#early || !this.#micPending) {
      this.#closePub();
    }
  }

  // ---- peer connections ----

  // The peer connections' ICE servers: the page's own and the relay's
  // (joined.ice_servers). ICE tries every path at once and prefers UDP
  // straight to the relay, then ICE-TCP, then TURN: a network that blocks
  // UDP falls back without anyone choosing.
  #iceServers() {
    return [...this.#opts.iceServers, ...this.#joinedIceServers];
  }

  // A slot is one named peer connection with its own operation queue, so
  // that descriptions and candidates apply in the order they arrived even
  // though each step is asynchronous. Remote candidates that arrive before
  // the remote description wait in `early`. `ended` holds, for sub, the
  // callbacks that report each remote track's end.
  #newSlot(name) {
    const pc = new RTCPeerConnection({ iceServers: this.#iceServers() });
    const slot = { name, pc, queue: Promise.resolve(), early: [], ended: new Set() };
    pc.addEventListener("icecandidate", (e) => {
      // Firefox ends each generation with an empty candidate; the relay
      // wants null for the end of candidates.
      const c = e.candidate && e.candidate.candidate ? e.candidate.toJSON() : null;
      this.send({ type: "candidate", pc: name, candidate: c });
    });
    pc.addEventListener("iceconnectionstatechange", () => this.#emitState());
    pc.addEventListener("connectionstatechange", () => this.#emitState());
    this.#emitState();
    return slot;
  }

  // #serial runs step after the slot's queued steps; the returned promise
  // has step's outcome, the queue goes on either way.
  #serial(slot, step) {
    const p = slot.queue.then(step);
    slot.queue = p.catch(() => {});
    return p;
  }

  #enqueue(slot, step) {
    slot.queue = slot.queue.then(step).catch((error) => {
      if (slot.pc.signalingState === "closed") return;
      this.#dispatch("warning", { pc: slot.name, error });
    });
    return slot.queue;
  }

  #subSlot() {
    if (this.#sub) return this.#sub;
    const slot = this.#newSlot("sub");
    slot.pc.addEventListener("track", (e) => this.#onRemoteTrack(slot, e));
    this.#sub = slot;
    return slot;
  }

  #onRemoteTrack(slot, e) {
    const { track, receiver, transceiver } = e;
    const stream = e.streams[0] ?? null;
    const streamId = stream ? stream.id : "";
    const detail = { track, stream, streamId, participant: streamId, receiver, transceiver };
    let done = false;
    const ended = () => {
      if (done) return;
      done = true;
      slot.ended.delete(ended);
      this.#dispatch("trackended", { track, streamId, participant: streamId });
    };
    slot.ended.add(ended);
    track.addEventListener("ended", ended);
    // A renegotiation that removes the track removes it from its stream;
    // the track itself ends only when the transceiver stops.
    stream?.addEventListener("removetrack", (ev) => {
      if (ev.track === track) ended();
    });
    this.#dispatch("track", detail);
  }

  // The server offers on sub, at join and again whenever tracks change (or
  // ICE restarts after a resume); every offer is answered on the same
  // connection.
  #onOffer(msg) {
    if (msg.pc !== "sub") return;
    const slot = this.#subSlot();
    this.#enqueue(slot, async () => {
      await slot.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      await this.#flushEarly(slot);
      const answer = await slot.pc.createAnswer();
      // The SDP goes out as the browser wrote it (a=ptime and fmtp included).
      await slot.pc.setLocalDescription(answer);
      this.send({ type: "answer", pc: "sub", sdp: slot.pc.localDescription.sdp });
    });
  }

  #onAnswer(msg) {
    if (msg.pc !== "pub" || !this.#pub) return;
    const slot = this.#pub;
    this.#enqueue(slot, async () => {
      if (slot.pc.signalingState !== "have-local-offer") return;
      await slot.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
      await this.#flushEarly(slot);
    });
  }

  #onCandidate(msg) {
    const slot = msg.pc === "sub" ? this.#sub : msg.pc === "pub" ? this.#pub : null;
    if (!slot) return;
    this.#enqueue(slot, async () => {
      if (!slot.pc.remoteDescription) {
        slot.early.push(msg.candidate);
        return;
      }
      await addCandidate(slot.pc, msg.candidate);
    });
  }

  async #flushEarly(slot) {
    const early = slot.early.splice(0);
    for (const c of early) await addCandidate(slot.pc, c);
  }

  // ---- messages ----

  #onMessage(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.#dispatch("warning", { error: new Error("relay sent non-JSON") });
      return;
    }
    if (!msg || typeof msg !== "object" || typeof msg.type !== "string") return;

    // A joined that answers a reconnection's join: resumed keeps the peer
    // connections; a fresh one replaces them, before the sub offer that
    // follows is applied.
    const rejoin = msg.type === "joined" && this.#reconnect !== null ? this.#reconnect : null;
    const previous = this.self?.id ?? null;

    switch (msg.type) {
      case "joined":
        if (rejoin && !msg.resumed) this.#teardownMedia();
        this.self = { ...msg.participant };
        this.room = msg.room;
        this.listen = msg.listen || "tracks"; // a relay without the mix extension sends none
        if (msg.participant.role === "audience") this.#audienceListen = this.listen;
        else this.#audienceListen = this.#joinReq?.listen || this.#audienceListen;
        this.#resume = typeof msg.resume === "string" ? msg.resume : "";
        // Relays without TURN (and version 1 relays) send none.
        this.#joinedIceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
        // Kept connections (a resume) take the new credentials for their
        // ICE restart.
        for (const slot of [this.#sub, this.#pub]) {
          if (!slot || slot.pc.connectionState === "closed") continue;
          try {
            slot.pc.setConfiguration({ ...slot.pc.getConfiguration(), iceServers: this.#iceServers() });
          } catch (e) {
            console.warn("relay: keeping the old ICE servers", e);
          }
        }
        this.#wsJoined = true;
        if (rejoin) {
          this.#stopReconnect();
          this.#emitState();
        }
        break;
      case "offer":
        this.#onOffer(msg);
        break;
      case "answer":
        this.#onAnswer(msg);
        break;
      case "candidate":
        this.#onCandidate(msg);
        break;
      case "pong": {
        const sent = this.#pingSentAt.get(msg.id);
        if (sent !== undefined) {
          this.#pingSentAt.delete(msg.id);
          this.#rtt = Math.round(performance.now() - sent);
          this.#emitState();
        }
        break;
      }
      case "role_changed":
        if (this.self && msg.participant === this.self.id) {
          this.self.role = msg.role;
          this.#micPending = false;
          this.#inviteElsewhere = false;
          // Hosts and guests always get tracks; back in the audience, the
          // choice made at join (the relay confirms a running mix with
          // track_published for participant "mix").
          this.listen = canPublish(msg.role) ? "tracks" : this.#audienceListen;
        }
        break;
      case "track_published":
        if (msg.participant === "mix") this.listen = "mix";
        break;
      case "mic_invited":
        this.#micPending = true;
        this.#inviteElsewhere = msg.elsewhere === true;
        break;
      case "mic_rejected":
        // This participant's request or invitation ended without a seat:
        // the relay closed its early pub (pub_closed), close ours too.
        if (this.self && (msg.participant === this.self.id || msg.pub_closed)) {
          this.#micPending = false;
          this.#inviteElsewhere = false;
          if (this.#early) this.#closePub();
        }
        break;
      // After these the relay closes the connection on purpose: do not
      // reconnect then.
      case "kicked":
        this.#final = "kicked";
        break;
      case "draining":
        this.#final = "draining";
        break;
      // The room moved to another relay of the cluster: the relay closes
      // this socket next (1000, "redirect") and the reconnection joins
      // the room there (afresh: resume tokens are per relay).
      // With then "mic_request": this listener's relay only relays the
      // room (a cluster edge); its hosts are at url, where the
      // reconnection joins as audience and asks for the mic again. With
      // then "mic_accept": it accepted a host's invitation there, and
      // accepts again at url with the ticket.
      case "redirect":
        if (typeof msg.url === "string" && msg.url) this.#url = msg.url;
        if (msg.then === "mic_request" && this.#micPending) {
          this.#micAfterMove = true;
          this.#micPending = false;
          if (this.#early) this.#closePub();
        } else if (msg.then === "mic_accept" && typeof msg.ticket === "string" && msg.ticket) {
          this.#acceptAfterMove = msg.ticket;
          this.#micPending = false;
          this.#inviteElsewhere = false;
          if (this.#early) this.#closePub();
        }
        break;
      case "participant_left":
        if (this.self && msg.participant === this.self.id && msg.reason === "replaced") this.#final = "replaced";
        break;
    }

    if (msg.id && this.#pending.has(msg.id)) {
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.type === "error") p.reject(new RelayError(msg));
      else p.resolve(msg);
      // A cluster's redirect of a join is followed (#joinFollowing): not
      // an error the page should show.
      if (msg.type === "error" && msg.code === "redirect") return;
    }

    this.#dispatch(msg.type, msg);
    this.#dispatch("message", msg);

    // After the page has seen joined / role_changed, so that it knows the
    // role before any localtrack or publisherror event.
    if (msg.type === "joined") {
      if (rejoin && msg.resumed) {
        this.#dispatch("resumed", { iceRestart: true, attempt: rejoin.attempt, joined: msg });
        this.#restartPub();
      } else if (rejoin) {
        this.#dispatch("rejoined", { previous, attempt: rejoin.attempt, joined: msg });
        this.#syncPublishing();
        if (this.#micAfterMove) {
          this.#micAfterMove = false;
          if (this.self?.role === "audience") this.requestMic();
        }
        if (this.#acceptAfterMove) {
          const ticket = this.#acceptAfterMove;
          this.#acceptAfterMove = "";
          if (this.self?.role === "audience") this.send({ type: "mic_accept", ticket });
        }
      } else {
        this.#syncPublishing();
      }
    }
    if (msg.type === "role_changed" && msg.participant === this.self?.id) this.#syncPublishing();
  }

  #request(msg, timeout = REQUEST_TIMEOUT_MS) {
    const id = `c${this.#nextID++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no reply to ${msg.type} within ${timeout / 1000} s`));
      }, timeout);
      this.#pending.set(id, { resolve, reject, timer });
      if (!this.send({ ...msg, id })) {
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(connectionLost("not connected"));
      }
    });
  }

  #startPing() {
    this.#stopPing();
    this.#pingTimer = setInterval(() => {
      const id = `p${this.#nextID++}`;
      this.#pingSentAt.clear(); // only the latest ping is timed
      this.#pingSentAt.set(id, performance.now());
      this.send({ type: "ping", id });
    }, this.#opts.pingInterval);
  }

  #stopPing() {
    clearInterval(this.#pingTimer);
    this.#pingTimer = null;
    this.#pingSentAt.clear();
  }

  #onClose(e) {
    this.#stopPing();
    this.#ws = null;
    this.#wsJoined = false;
    this.#rejectPending(`connection closed (code ${e.code})`);
    if (this.#reconnect) {
      // A reconnection's socket closed; its loop goes on, or gives up on a
      // close that is a decision.
      if (!this.#mayRetry(e)) this.#reconnect.fatal = e;
      this.#reconnect.wake?.();
      this.#emitState();
      return;
    }
    if (this.#mayRetry(e) && this.self && !this.#closed) {
      this.#runReconnect(e);
      return;
    }
    this.#end(e);
  }

  #rejectPending(why) {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(connectionLost(why));
    }
    this.#pending.clear();
  }

  // #mayRetry: the close was not a decision of this client (leave) or of
  // the relay (kicked, replaced, a policy close, draining, shutting down).
  #mayRetry(e) {
    if (!this.#opts.reconnect || this.#closed || this.#final) return false;
    if (e.code === 1008 || e.code === 1001) return false;
    if (e.code === 1000 && e.reason === "replaced") return false;
    return true;
  }

  // #end ends the session for good: media torn down, then "close".
  #end(e) {
    this.#closed = true;
    this.#teardownMedia();
    this.#emitState();
    this.#dispatch("close", { code: e.code, reason: e.reason, wasClean: e.wasClean });
  }

  async #runReconnect(e) {
    const r = { attempt: 0, code: e.code, reason: e.reason, timer: 0, wake: null, fatal: null };
    this.#reconnect = r;
    this.#emitState();
    const since = performance.now();
    let error = new Error(`connection lost (code ${e.code})`);
    for (;;) {
      const left = this.#opts.reconnectWindow - (performance.now() - since);
      if (left <= 0) break;
      const delay = Math.round(Math.min(this.#opts.reconnectDelay * 2 ** r.attempt, this.#opts.reconnectMaxDelay, left));
      r.attempt++;
      this.#dispatch("reconnecting", { attempt: r.attempt, delay, code: e.code, reason: e.reason });
      await new Promise((resolve) => {
        r.wake = resolve;
        r.timer = setTimeout(resolve, delay);
      });
      r.wake = null;
      if (this.#reconnect !== r) return; // left meanwhile
      try {
        await this.#attempt(r);
        return; // joined: #onMessage has taken it from there
      } catch (err) {
        if (this.#reconnect !== r) return;
        error = err;
        // Drop whatever this attempt left open.
        const ws = this.#ws;
        this.#ws = null;
        this.#stopPing();
        if (ws && ws.readyState !== WebSocket.CLOSED) ws.close(1000, "reconnect attempt abandoned");
        // The relay refused the join (shutting_down, unauthorized,
        // room_full, ...) or closed on purpose: retrying will not help.
        if (err instanceof RelayError || r.fatal || this.#final) break;
      }
    }
    if (this.#reconnect !== r) return;
    this.#stopReconnect();
    this.#dispatch("reconnectfailed", { attempts: r.attempt, error });
    const last = r.fatal ?? { code: r.code, reason: r.reason, wasClean: false };
    this.#end(last);
  }

  // #attempt opens a new WebSocket and joins with the resume token, each
  // step within attemptTimeout.
  async #attempt(r) {
    const timeout = this.#opts.attemptTimeout;
    // In a cluster the relay that served the session may be gone (it
    // died or drained): every other attempt goes to the relay the page
    // first connected to, which routes the join to the room's relay now.
    // With opts.relays, attempts go round those too: any relay of the
    // cluster routes the join (a listener is served where it lands).
    const urls = [...new Set([this.#url, this.#entryURL, ...this.#opts.relays].filter(Boolean))];
    const url = urls[(r.attempt - 1) % urls.length];
    await withTimeout(this.#open(url), timeout, "open the WebSocket");
    this.#url = url;
    if (this.#reconnect !== r) return;
    const { room, name, role, token, listen } = this.#joinReq ?? { room: this.room, name: this.self?.name, role: this.self?.role };
    const msg = { type: "join", room, name, role, version: PROTOCOL_VERSION };
    if (token) msg.token = token;
    if (listen) msg.listen = listen; // a resume keeps the earlier choice; a fresh join asks again
    if (this.#resume) {
      msg.resume = this.#resume;
      msg.ice_restart = true; // the peer connections are kept
    }
    await this.#joinFollowing(msg, timeout);
  }

  #stopReconnect() {
    const r = this.#reconnect;
    if (!r) return;
    this.#reconnect = null;
    clearTimeout(r.timer);
    r.wake?.();
  }

  #teardownMedia() {
    this.#closePub();
    if (this.#sub) {
      const slot = this.#sub;
      this.#sub = null;
      slot.pc.close();
      // Closing ends the remote tracks without an "ended" event.
      for (const ended of [...slot.ended]) ended();
    }
    this.#emitState();
  }

  #emitState() {
    this.#dispatch("statechange", this.state);
  }

  #dispatch(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function connectionLost(message) {
  const err = new Error(message);
  err.name = "ConnectionLostError";
  return err;
}

function isConnectionLost(err) {
  return err?.name === "ConnectionLostError";
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(connectionLost(`could not ${what} within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function withParticipant(type, participant) {
  return participant ? { type, participant } : { type };
}

async function addCandidate(pc, c) {
  if (c === null || c === undefined) {
    // End of candidates. Browsers that predate the argument-less form throw;
    // nothing depends on it, so ignore that.
    try {
      await pc.addIceCandidate();
    } catch {
      /* optional */
    }
    return;
  }
  await pc.addIceCandidate(c);
}

/**
 * Sums one RTCStatsReport's audio figures:
 *   packetsReceived, packetsLost, jitter (s, the worst track),
 *   concealedSamples, totalSamplesReceived   from inbound-rtp (receiving);
 *   packetsSent                              from outbound-rtp (sending);
 *   roundTripTime (s)                        from remote-inbound-rtp, else
 *                                            the selected candidate pair;
 *   inbound: [{trackIdentifier, packetsReceived, concealedSamples, totalSamplesReceived}].
 */
export function summarizeStats(report) {
  const s = {
    packetsReceived: 0,
    packetsLost: 0,
    jitter: null,
    concealedSamples: 0,
    silentConcealedSamples: 0,
    concealmentEvents: 0,
    packetsDiscarded: 0,
    totalSamplesReceived: 0,
    packetsSent: 0,
    roundTripTime: null,
    inbound: [],
    transport: null,
  };
  let pairRTT = null;
  for (const r of report.values()) {
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      s.packetsReceived += r.packetsReceived ?? 0;
      s.packetsLost += Math.max(0, r.packetsLost ?? 0);
      s.concealedSamples += r.concealedSamples ?? 0;
      s.silentConcealedSamples += r.silentConcealedSamples ?? 0;
      s.concealmentEvents += r.concealmentEvents ?? 0;
      s.packetsDiscarded += r.packetsDiscarded ?? 0;
      s.totalSamplesReceived += r.totalSamplesReceived ?? 0;
      if (r.jitter !== undefined) s.jitter = Math.max(s.jitter ?? 0, r.jitter);
      s.inbound.push({
        trackIdentifier: r.trackIdentifier,
        packetsReceived: r.packetsReceived ?? 0,
        concealedSamples: r.concealedSamples ?? 0,
        totalSamplesReceived: r.totalSamplesReceived ?? 0,
      });
    } else if (r.type === "outbound-rtp" && r.kind === "audio") {
      s.packetsSent += r.packetsSent ?? 0;
    } else if (r.type === "remote-inbound-rtp" && r.roundTripTime !== undefined) {
      s.roundTripTime = r.roundTripTime;
      s.packetsLost += Math.max(0, r.packetsLost ?? 0);
    } else if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") {
      if (r.currentRoundTripTime !== undefined) pairRTT = r.currentRoundTripTime;
    }
  }
  if (s.roundTripTime === null) s.roundTripTime = pairRTT;
  s.transport = selectedTransport(report);
  return s;
}

/**
 * How the selected candidate pair's media travels, from its local
 * candidate: "udp" or "tcp" straight to the relay, or "relay/udp",
 * "relay/tcp", "relay/tls" through TURN over that protocol; null while no
 * pair is selected.
 * @param {RTCStatsReport} report
 * @returns {string|null}
 */
export function selectedTransport(report) {
  let pair = null;
  for (const r of report.values()) {
    // Chrome names the pair in its transport; Firefox marks it selected.
    if (r.type === "transport" && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId) ?? pair;
    else if (r.type === "candidate-pair" && r.selected && !pair) pair = r;
  }
  const local = pair ? report.get(pair.localCandidateId) : null;
  if (!local) return null;
  if (local.candidateType === "relay") return `relay/${local.relayProtocol || "udp"}`;
  return local.protocol ?? null;
}
