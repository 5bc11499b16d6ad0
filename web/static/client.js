// RelayClient speaks signaling protocol version 1 (docs/protocol.md) to the
// relay: one WebSocket, and up to two peer connections named by "pc":
//
//   sub  offered by the server; everything this participant receives.
//   pub  offered by this client, only for role host or guest; the microphone.
//
// Every server message is dispatched as a CustomEvent named by its "type"
// (joined, participant_joined, error, ...) with the message as detail, and
// also as a "message" event. Events the client adds itself:
//
//   track        {track, stream, streamId, participant, receiver, transceiver}
//                a remote track on sub; streamId is the publisher's id.
//   trackended   {track, streamId, participant}: the track was removed from
//                its stream or ended (the server renegotiated it away).
//   localtrack   {track, stream}: the microphone is being published.
//   localtrackended {track}
//   publisherror {error}: getUserMedia or the pub negotiation failed; the
//                session stays up, so the page can explain and offer a retry.
//   statechange  {ws, sub, pub, rtt}: WebSocket or ICE state changed.
//   close        {code, reason, wasClean}: the WebSocket closed.

const PROTOCOL_VERSION = 1;
const PING_INTERVAL_MS = 20_000;
const REQUEST_TIMEOUT_MS = 15_000;

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
  }
}

export const DEFAULT_AUDIO_CONSTRAINTS = Object.freeze({
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
});

export class RelayClient extends EventTarget {
  #opts;
  #ws = null;
  #nextID = 1;
  #pending = new Map(); // id -> {resolve, reject, timer}
  #pingTimer = null;
  #pingSentAt = new Map(); // ping id -> performance.now()
  #rtt = null;
  #sub = null; // peer slot, see #newSlot
  #pub = null;
  #micStream = null;
  #publishing = null; // the promise of an ongoing publishMicrophone
  #closed = false;

  /** The participant as joined reported it ({id, name, role}), or null. */
  self = null;
  /** The room name as joined reported it, or "". */
  room = "";

  /**
   * @param {object} [opts]
   * @param {RTCIceServer[]} [opts.iceServers]  for both peer connections
   * @param {boolean} [opts.autoPublish=true]   publish the microphone whenever
   *   this participant's role is host or guest, stop when it is not
   * @param {MediaTrackConstraints} [opts.audio] getUserMedia audio constraints
   * @param {number} [opts.pingInterval=20000]  ms between pings
   */
  constructor(opts = {}) {
    super();
    this.#opts = {
      iceServers: [],
      autoPublish: true,
      audio: DEFAULT_AUDIO_CONSTRAINTS,
      pingInterval: PING_INTERVAL_MS,
      ...opts,
    };
  }

  // ---- connection ----

  /** Opens the WebSocket; resolves when it is open. */
  connect(url = defaultRelayURL()) {
    if (this.#ws) return Promise.reject(new Error("already connected"));
    this.#closed = false;
    this.self = null;
    this.room = "";
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      this.#ws = ws;
      let opened = false;
      ws.addEventListener("open", () => {
        opened = true;
        this.#startPing();
        this.#emitState();
        resolve();
      });
      ws.addEventListener("message", (e) => this.#onMessage(e.data));
      ws.addEventListener("error", () => {
        if (!opened) reject(new Error(`cannot connect to ${url}`));
      });
      ws.addEventListener("close", (e) => {
        if (!opened) reject(new Error(`cannot connect to ${url} (code ${e.code})`));
        this.#onClose(e);
      });
      this.#emitState();
    });
  }

  /**
   * Sends join and resolves with the joined message; rejects with a
   * RelayError if the relay refuses. The sub offer follows on its own; with
   * autoPublish, the microphone is published if the granted role allows.
   */
  async join({ room, name, role = "audience", token } = {}) {
    const msg = { type: "join", room, name, role, version: PROTOCOL_VERSION };
    if (token) msg.token = token;
    return this.#request(msg);
  }

  /** Sends leave, closes both peer connections and, soon after, the socket. */
  async leave() {
    if (!this.#ws) return;
    const ws = this.#ws;
    this.#closed = true;
    // Before joined, leave would be a bad_request; closing says enough.
    const sent = this.self !== null && this.send({ type: "leave" });
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

  /** Sends one message as JSON. Returns false if the socket is not open. */
  send(msg) {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(msg));
    return true;
  }

  /** WebSocket and ICE states, and the last ping round trip in ms. */
  get state() {
    const ws = this.#ws;
    return {
      ws: ws ? ["connecting", "open", "closing", "closed"][ws.readyState] : "closed",
      sub: this.#sub ? this.#sub.pc.iceConnectionState : "none",
      pub: this.#pub ? this.#pub.pc.iceConnectionState : "none",
      rtt: this.#rtt,
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

  requestMic() { return this.send({ type: "mic_request" }); }
  /** Withdraws this audience member's own mic request (or declines an invitation). */
  cancelMicRequest() { return this.send({ type: "mic_reject" }); }
  /** A guest leaves the mic and goes back to the audience. */
  leaveMic() { return this.send({ type: "mic_release" }); }
  inviteToMic(participant) { return this.send({ type: "mic_invite", participant }); }
  acceptMic(participant) { return this.send(withParticipant("mic_accept", participant)); }
  rejectMic(participant) { return this.send(withParticipant("mic_reject", participant)); }
  releaseMic(participant) { return this.send(withParticipant("mic_release", participant)); }
  mute(participant, muted) { return this.send({ type: "mute", participant, muted: !!muted }); }
  kick(participant, reason) {
    return this.send(reason ? { type: "kick", participant, reason } : { type: "kick", participant });
  }

  /** Changes the getUserMedia audio constraints for the next publish. */
  setAudioConstraints(audio) {
    this.#opts.audio = { ...audio };
  }

  // ---- publishing ----

  /**
   * Captures the microphone and offers it on pub. Resolves when the relay
   * has answered. Rejects (and dispatches publisherror) if getUserMedia or
   * the negotiation fails; a second call while one runs joins the first.
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
    if (this.#closed || !canPublish(this.self?.role)) {
      // Left, or lost the role, while the permission prompt was up.
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    this.#micStream = stream;
    const slot = this.#newSlot("pub");
    this.#pub = slot;
    slot.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    track.addEventListener("ended", () => this.#dispatch("localtrackended", { track }));
    this.#dispatch("localtrack", { track, stream });

    const offer = await slot.pc.createOffer();
    await slot.pc.setLocalDescription(offer);
    // The answer arrives as a plain "answer" message, applied in #onAnswer;
    // the request only tells us whether the relay accepted the offer.
    await this.#request({ type: "offer", pc: "pub", sdp: slot.pc.localDescription.sdp });
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
      this.#emitState();
    }
  }

  #syncPublishing() {
    if (!this.#opts.autoPublish || this.#closed) return;
    if (canPublish(this.self?.role)) {
      this.publishMicrophone().catch(() => {}); // reported as publisherror
    } else {
      this.#closePub();
    }
  }

  // ---- peer connections ----

  // A slot is one named peer connection with its own operation queue, so
  // that descriptions and candidates apply in the order they arrived even
  // though each step is asynchronous. Remote candidates that arrive before
  // the remote description wait in `early`.
  #newSlot(name) {
    const pc = new RTCPeerConnection({ iceServers: this.#opts.iceServers });
    const slot = { name, pc, queue: Promise.resolve(), early: [] };
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
    slot.pc.addEventListener("track", (e) => this.#onRemoteTrack(e));
    this.#sub = slot;
    return slot;
  }

  #onRemoteTrack(e) {
    const { track, receiver, transceiver } = e;
    const stream = e.streams[0] ?? null;
    const streamId = stream ? stream.id : "";
    const detail = { track, stream, streamId, participant: streamId, receiver, transceiver };
    let done = false;
    const ended = () => {
      if (done) return;
      done = true;
      this.#dispatch("trackended", { track, streamId, participant: streamId });
    };
    track.addEventListener("ended", ended);
    // A renegotiation that removes the track removes it from its stream;
    // the track itself ends only when the transceiver stops.
    stream?.addEventListener("removetrack", (ev) => {
      if (ev.track === track) ended();
    });
    this.#dispatch("track", detail);
  }

  // The server offers on sub, at join and again whenever tracks change;
  // every offer is answered on the same connection.
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

    switch (msg.type) {
      case "joined":
        this.self = { ...msg.participant };
        this.room = msg.room;
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
        if (this.self && msg.participant === this.self.id) this.self.role = msg.role;
        break;
    }

    if (msg.id && this.#pending.has(msg.id)) {
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.type === "error") p.reject(new RelayError(msg));
      else p.resolve(msg);
    }

    this.#dispatch(msg.type, msg);
    this.#dispatch("message", msg);

    // After the page has seen joined / role_changed, so that it knows the
    // role before any localtrack or publisherror event.
    if (msg.type === "joined") this.#syncPublishing();
    if (msg.type === "role_changed" && msg.participant === this.self?.id) this.#syncPublishing();
  }

  #request(msg) {
    const id = `c${this.#nextID++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no reply to ${msg.type} within ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      if (!this.send({ ...msg, id })) {
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(new Error("not connected"));
      }
    });
  }

  #startPing() {
    this.#pingTimer = setInterval(() => {
      const id = `p${this.#nextID++}`;
      this.#pingSentAt.clear(); // only the latest ping is timed
      this.#pingSentAt.set(id, performance.now());
      this.send({ type: "ping", id });
    }, this.#opts.pingInterval);
  }

  #onClose(e) {
    this.#closed = true;
    clearInterval(this.#pingTimer);
    this.#pingTimer = null;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`connection closed (code ${e.code})`));
    }
    this.#pending.clear();
    this.#teardownMedia();
    this.#ws = null;
    this.#emitState();
    this.#dispatch("close", { code: e.code, reason: e.reason, wasClean: e.wasClean });
  }

  #teardownMedia() {
    this.#closePub();
    if (this.#sub) {
      this.#sub.pc.close();
      this.#sub = null;
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
  return s;
}
