// The page: a join form, then the room (participants, their tracks, the
// microphone) for as long as the session lasts. Protocol details live in
// client.js; this file only turns its events into DOM.

import { RelayClient, RelayError, canPublish, defaultRelayURL } from "./client.js";
import { createPK } from "./pk.js";

const $ = (sel) => document.querySelector(sel);

const ui = {
  status: $("#status"),
  errors: $("#errors"),
  banner: $("#banner"),
  joinView: $("#join-view"),
  form: $("#join-form"),
  joinButton: $("#join-button"),
  roomView: $("#room-view"),
  roomName: $("#room-name"),
  audience: $("#audience-count"),
  leave: $("#leave"),
  invite: $("#copy-invite"),
  mic: $("#mic"),
  micMeter: $("#mic-meter"),
  micState: $("#mic-state"),
  mute: $("#mute"),
  micError: $("#mic-error"),
  micErrorText: $("#mic-error-text"),
  micRetry: $("#mic-retry"),
  leaveMic: $("#leave-mic"),
  listener: $("#listener"),
  listenerState: $("#listener-state"),
  requestMic: $("#request-mic"),
  cancelRequest: $("#cancel-request"),
  acceptInvite: $("#accept-invite"),
  declineInvite: $("#decline-invite"),
  tiles: $("#tiles"),
  queueCard: $("#queue-card"),
  queue: $("#queue"),
  queueCount: $("#queue-count"),
  queueEmpty: $("#queue-empty"),
  audienceCard: $("#audience-card"),
  audienceList: $("#audience-list"),
  audienceEmpty: $("#audience-empty"),
  stats: $("#stats"),
  unlock: $("#unlock-audio"),
  log: $("#log"),
  sinks: $("#sinks"),
};

// ---- session state ----

let client = null;
let expectClose = false; // set when we leave or are kicked
let drained = false; // the relay said it is draining: its 1001 close is expected
let audioCtx = null;

const room = {
  name: "",
  self: null, // {id, name, role}
  participants: new Map(), // id -> {id, name, role, muted, tracks: Map(id -> {id, kind})}
  audience: 0,
  speaking: new Map(), // participant id -> level 0..1
  selfMuted: false,
  micState: "none", // this audience member: none, requested or invited
  queue: [], // hosts: ids of audience members asking for the mic, oldest first
};

// Remote tracks as they arrive on sub, by publisher (= stream id).
const remote = new Map(); // participant id -> [{track, audio, meter}]
let local = null; // {track, meter} while the microphone is published

const pk = createPK({ client: () => client, isHost: () => room.self?.role === "host", log: (text) => logLine(text) });

// ---- join form ----

const ROLES = new Set(["host", "guest", "audience"]);

function prefill() {
  const q = new URLSearchParams(location.search);
  const f = ui.form.elements;
  f.room.value = q.get("room") || "demo";
  f.name.value = q.get("name") || randomName();
  const role = q.get("role");
  f.role.value = ROLES.has(role) ? role : "guest";
  f.token.value = q.get("token") || "";
  if (f.token.value) $("#token-details").open = true;
  f.separateTracks.checked = q.get("listen") === "tracks";
  syncListenChoice();
  for (const k of PROCESSING) if (q.has(k)) f[k].checked = q.get(k) !== "0";
}

const PROCESSING = ["echoCancellation", "noiseSuppression", "autoGainControl"];

// The listening choice is the audience's: hosts and guests always get
// separate tracks, so the checkbox is off limits for them.
function syncListenChoice() {
  const f = ui.form.elements;
  f.separateTracks.disabled = f.role.value !== "audience";
}
for (const r of ui.form.elements.role) r.addEventListener("change", syncListenChoice);

// listenChoice is what the page asks for: the mix for the audience unless
// Separate tracks is ticked; nothing (the relay's default) otherwise.
function listenChoice(role) {
  if (role !== "audience") return undefined;
  return ui.form.elements.separateTracks.checked ? "tracks" : "mix";
}

function audioConstraints() {
  const f = ui.form.elements;
  return Object.fromEntries(PROCESSING.map((k) => [k, f[k].checked]));
}

function randomName() {
  const a = ["Calm", "Brave", "Quiet", "Swift", "Bright", "Lucky", "Gentle", "Bold"];
  const b = ["Otter", "Finch", "Panda", "Heron", "Lynx", "Koala", "Robin", "Fox"];
  const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
  return `${pick(a)} ${pick(b)} ${Math.floor(Math.random() * 90) + 10}`;
}

// Keeps the address bar in step with the session so a reload rejoins the
// same room. A token stays only if it came in the link.
function rememberInURL({ room: r, name, role, listen }) {
  const q = new URLSearchParams(location.search);
  q.set("room", r);
  q.set("name", name);
  q.set("role", role);
  if (listen) q.set("listen", listen);
  else q.delete("listen");
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

function inviteLink() {
  const q = new URLSearchParams({ room: room.name });
  return `${location.origin}${location.pathname}?${q}`;
}

ui.form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = ui.form.elements;
  const req = {
    room: f.room.value.trim(),
    name: f.name.value.trim(),
    role: f.role.value,
    token: f.token.value.trim() || undefined,
    listen: listenChoice(f.role.value),
  };
  // Created inside the click so that browsers let it run.
  ensureAudioContext();
  ui.joinButton.disabled = true;
  clearErrors();
  try {
    await start(req);
    rememberInURL(req);
  } catch (err) {
    // Relay errors are already on screen through the "error" event.
    if (!(err instanceof RelayError)) showError("Could not join", err.message);
    await stop();
  } finally {
    ui.joinButton.disabled = false;
  }
});

// ---- session ----

// Reconnecting after a transient drop is RelayClient's job (it resumes the
// session within the relay's grace period); the page shows what happens.

async function start(req) {
  expectClose = false;
  drained = false;
  hideBanner();
  client = new RelayClient({ audio: audioConstraints() });
  wire(client);
  await client.connect(defaultRelayURL());
  const joined = await client.join(req);
  if (canPublish(req.role) && !canPublish(joined.participant.role)) {
    logLine(`The relay let you in as ${joined.participant.role}.`);
  }
  if (req.listen === "mix" && joined.listen !== "mix") {
    logLine("This relay has no audience mix: you hear each person on the mic separately.");
  }
}

async function stop() {
  expectClose = true;
  hideBanner();
  const c = client;
  client = null;
  if (c) await c.leave();
  resetRoom();
  showView("join");
}

ui.leave.addEventListener("click", () => stop());

function wire(c) {
  // Events from a client we already let go of (after Leave) change nothing.
  const on = (type, fn) => c.addEventListener(type, (e) => c === client && fn(e));
  on("statechange", (e) => renderStatus(e.detail));
  on("error", (e) => {
    const { code, message } = e.detail;
    showError(code, explain(code, message));
    pk.failed();
  });
  for (const type of ["pk_invited", "pk_started", "pk_rejected", "pk_ended"]) on(type, (e) => pk.on(type, e.detail));
  on("close", (e) => {
    // Before joined, the submit handler reports the failure and cleans up.
    if (!room.self) return;
    // The client reconnects by itself after a drop; "close" is the end.
    const { code, reason } = e.detail;
    client = null;
    resetRoom();
    showView("join");
    if (drained) {
      showBanner("draining", "This relay has shut down; join again in a moment.");
    } else {
      hideBanner();
    }
    if (expectClose) return;
    if (drained || code === 1001) {
      showError("shutting_down", "The relay shut down. Join again in a moment.");
      return;
    }
    if (code === 1000 && reason === "replaced") {
      showError("replaced", "This session continues in another tab or window, which joined with it.");
      return;
    }
    const why = reason ? `: ${reason}` : "";
    showError("disconnected", `The relay closed the connection (code ${code}${why}). Press Join to join again.`);
  });
  on("reconnecting", (e) => {
    const { attempt } = e.detail;
    if (attempt === 1) logLine("Connection lost; reconnecting.");
    showBanner("reconnecting", `Connection lost — reconnecting… (attempt ${attempt})`);
  });
  on("resumed", () => {
    lastStats = null; // the same connections, but a gap in the counters
    logLine("Reconnected: the session resumed.");
    showBanner("resumed", "Reconnected. You are back in the room.", 5000);
  });
  on("rejoined", () => {
    lastStats = null; // new connections, new counters
    logLine("Reconnected as a new participant: the relay had let the session go.");
    showBanner("rejoined", "Reconnected. The relay had let your session go, so you joined again.", 8000);
  });
  on("reconnectfailed", (e) => {
    const err = e.detail.error;
    if (!(err instanceof RelayError)) {
      showError("disconnected", `Could not reconnect after ${e.detail.attempts} attempts: ${err?.message || err}.`);
    }
  });
  on("draining", (e) => {
    drained = true;
    startDrainCountdown(e.detail.timeout_ms);
    logLine("The relay is shutting down.");
  });

  on("joined", (e) => onJoined(e.detail));
  on("participant_joined", (e) => {
    const p = e.detail.participant;
    upsert(p);
    logLine(`${p.name} joined as ${p.role}.`);
    renderRoom();
  });
  on("participant_left", (e) => {
    const { participant, reason } = e.detail;
    // Another connection resumed this session; the close that follows is
    // explained by "close" (reason "replaced").
    if (participant === room.self?.id) return;
    const p = room.participants.get(participant);
    room.participants.delete(participant);
    room.speaking.delete(participant);
    dequeue(participant);
    dropRemote(participant);
    logLine(`${nameOf(participant, p)} left${reason && reason !== "left" ? ` (${reason})` : ""}.`);
    renderRoom();
  });
  on("track_published", (e) => {
    const { participant, track } = e.detail;
    room.participants.get(participant)?.tracks.set(track.id, track);
    renderRoom();
  });
  on("track_unpublished", (e) => {
    const { participant, track } = e.detail;
    room.participants.get(participant)?.tracks.delete(track);
    renderRoom();
  });
  on("role_changed", (e) => {
    const { participant, role } = e.detail;
    const p = room.participants.get(participant);
    dequeue(participant);
    if (participant === room.self?.id) {
      room.self.role = role;
      room.micState = "none";
      logLine(`You are now ${role}.`);
    } else {
      logLine(`${nameOf(participant, p)} is now ${role}.`);
    }
    if (p) {
      p.role = role;
      // Audience members are visible to hosts only (Presence); nobody else
      // hears of this one again, so drop it rather than keep a stale row.
      if (role === "audience" && room.self?.role !== "host" && participant !== room.self?.id) {
        room.participants.delete(participant);
      }
    }
    renderRoom();
  });
  on("muted", (e) => {
    const { participant, muted, by } = e.detail;
    const p = room.participants.get(participant);
    if (p) p.muted = muted;
    if (participant === room.self?.id) {
      room.selfMuted = muted;
      // Follow the relay's word, whoever muted us: nothing leaves the
      // microphone while muted.
      if (local) local.track.enabled = !muted;
    }
    const who = by && by !== participant ? ` by ${nameOf(by)}` : "";
    logLine(`${nameOf(participant, p)} ${muted ? "muted" : "unmuted"}${who}.`);
    renderRoom();
  });
  on("speakers", (e) => {
    room.speaking = new Map((e.detail.speakers || []).map((s) => [s.participant, s.level]));
    renderSpeaking();
  });
  on("audience", (e) => {
    room.audience = e.detail.count;
    renderAudience();
  });
  on("mic_requested", (e) => {
    const id = e.detail.participant;
    if (!room.queue.includes(id)) room.queue.push(id);
    logLine(`${nameOf(id)} asks for the mic.`);
    renderRoom();
  });
  on("mic_invited", (e) => {
    room.micState = "invited";
    logLine(`${nameOf(e.detail.by)} invites you to the mic.`);
    renderRoom();
  });
  on("mic_rejected", (e) => {
    const { participant, by, reason } = e.detail;
    dequeue(participant);
    const self = !participant || participant === room.self?.id;
    if (self) room.micState = "none";
    logLine(micRejectedText(self, participant, by, reason));
    renderRoom();
  });
  on("kicked", (e) => {
    expectClose = true; // the close that follows is explained here
    showError("kicked", `You were removed from the room${e.detail.reason ? `: ${e.detail.reason}` : ""}.`);
  });

  on("track", (e) => addRemote(e.detail));
  on("trackended", (e) => removeRemote(e.detail.participant, e.detail.track));
  on("localtrack", (e) => {
    hideMicError();
    local = { track: e.detail.track, meter: makeMeter(e.detail.stream) };
    local.track.enabled = !room.selfMuted;
    renderRoom();
  });
  on("localtrackended", () => {
    local?.meter?.close();
    local = null;
    renderRoom();
  });
  on("publisherror", (e) => showMicError(e.detail.error));
  on("warning", (e) => console.warn("relay client:", e.detail));
}

function onJoined(msg) {
  room.name = msg.room;
  room.self = { ...msg.participant };
  room.audience = msg.audience ?? 0;
  room.participants.clear();
  for (const p of msg.participants || []) upsert(p);
  if (!room.participants.has(room.self.id)) upsert(room.self);
  pk.joined(msg.participants || []);
  ui.roomName.textContent = msg.room;
  if (!msg.resumed) logLine(`Joined ${msg.room} as ${msg.participant.name} (${msg.participant.role}).`);
  showView("room");
  startStats();
  renderRoom();
}

function upsert(p) {
  const prev = room.participants.get(p.id);
  const tracks = new Map((p.tracks || []).map((t) => [t.id, t]));
  room.participants.set(p.id, {
    id: p.id,
    name: p.name,
    role: p.role,
    room: p.room ?? prev?.room ?? "", // a remote participant's room (a linked room's publisher)
    muted: p.muted ?? prev?.muted ?? false,
    tracks: p.tracks ? tracks : prev?.tracks ?? tracks,
  });
}

function nameOf(id, p = room.participants.get(id)) {
  if (id === room.self?.id) return "You";
  return p ? p.name : "Someone";
}

function resetRoom() {
  for (const id of [...remote.keys()]) dropRemote(id);
  local?.meter?.close();
  local = null;
  room.name = "";
  room.self = null;
  room.participants.clear();
  room.speaking.clear();
  room.audience = 0;
  room.selfMuted = false;
  room.micState = "none";
  room.queue = [];
  pk.reset();
  ui.tiles.replaceChildren();
  ui.queue.replaceChildren();
  ui.audienceList.replaceChildren();
  resetStats();
  ui.log.replaceChildren();
  ui.unlock.hidden = true;
  hideMicError();
  renderStatus({ ws: "closed", sub: "none", pub: "none", rtt: null });
}

// ---- remote audio ----

function addRemote({ track, participant }) {
  if (track.kind !== "audio") return; // video belongs to a later page
  const stream = new MediaStream([track]);
  // Chrome delivers no samples to a remote track that no media element
  // plays, so the element goes into the DOM, not just into memory.
  const audio = document.createElement("audio");
  audio.autoplay = true;
  audio.srcObject = stream;
  audio.dataset.participant = participant;
  ui.sinks.append(audio);
  audio.play().catch(() => {
    ui.unlock.hidden = false;
  });
  const entry = { track, audio, meter: makeMeter(stream) };
  const list = remote.get(participant) || [];
  list.push(entry);
  remote.set(participant, list);
  renderRoom();
}

function removeRemote(participant, track) {
  const list = remote.get(participant);
  if (!list) return;
  const i = list.findIndex((r) => r.track === track);
  if (i < 0) return;
  releaseRemote(list[i]);
  list.splice(i, 1);
  if (list.length === 0) remote.delete(participant);
  renderRoom();
}

function dropRemote(participant) {
  for (const r of remote.get(participant) || []) releaseRemote(r);
  remote.delete(participant);
}

function releaseRemote(r) {
  r.meter?.close();
  r.audio.srcObject = null;
  r.audio.remove();
}

ui.unlock.addEventListener("click", () => {
  ensureAudioContext();
  for (const a of ui.sinks.querySelectorAll("audio")) a.play().catch(() => {});
  ui.unlock.hidden = true;
});

// ---- level meters ----

function ensureAudioContext() {
  const Ctx = globalThis.AudioContext || globalThis.webkitAudioContext;
  if (!Ctx) return null;
  if (!audioCtx) audioCtx = new Ctx();
  if (audioCtx.state === "suspended") audioCtx.resume().catch(() => {});
  return audioCtx;
}

// A meter reads an AnalyserNode that is connected to nothing else: the
// <audio> element does the playing.
function makeMeter(stream) {
  const ctx = ensureAudioContext();
  if (!ctx) return null;
  try {
    const source = ctx.createMediaStreamSource(stream);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    const meter = {
      level: 0,
      els: [],
      read() {
        analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const v of buf) sum += v * v;
        const db = 10 * Math.log10(sum / buf.length + 1e-12);
        const level = Math.min(1, Math.max(0, (db + 60) / 60)); // -60..0 dBFS
        meter.level = Math.max(level, meter.level * 0.85); // quick rise, slow fall
        return meter.level;
      },
      close() {
        source.disconnect();
        meters.delete(meter);
      },
    };
    meters.add(meter);
    startMeterLoop();
    return meter;
  } catch {
    return null;
  }
}

const meters = new Set();
let meterLoop = 0;

function startMeterLoop() {
  if (meterLoop) return;
  let last = 0;
  const tick = (now) => {
    if (meters.size === 0) {
      meterLoop = 0;
      return;
    }
    // About 20 updates a second is smooth enough for a meter and spares
    // the CPU (phones; several tabs on one machine).
    if (now - last < 50) {
      meterLoop = requestAnimationFrame(tick);
      return;
    }
    last = now;
    for (const m of meters) {
      const level = m.read();
      for (const el of m.els) el.style.setProperty("--level", level.toFixed(3));
    }
    meterLoop = requestAnimationFrame(tick);
  };
  meterLoop = requestAnimationFrame(tick);
}

function meterElement(meter) {
  const el = h("span", { className: "meter", "aria-hidden": "true" });
  if (meter) meter.els.push(el);
  return el;
}

// ---- microphone panel ----

function renderMic() {
  const publisher = canPublish(room.self?.role);
  ui.mic.hidden = !publisher;
  if (!publisher) return;
  if (!local) ui.micMeter.style.setProperty("--level", "0");
  ui.micState.textContent = local
    ? room.selfMuted ? "Muted: the room does not hear you." : "Live: the room hears you."
    : ui.micError.hidden ? "Starting the microphone…" : "Not publishing.";
  ui.mute.hidden = !local;
  ui.leaveMic.hidden = room.self?.role !== "guest";
  ui.mute.textContent = room.selfMuted ? "Unmute" : "Mute";
  ui.mute.setAttribute("aria-pressed", String(room.selfMuted));
}

ui.mute.addEventListener("click", () => {
  if (client && room.self) client.mute(room.self.id, !room.selfMuted);
});

ui.micRetry.addEventListener("click", () => {
  if (!client) return;
  hideMicError();
  renderMic();
  client.publishMicrophone().catch(() => {}); // shown through publisherror
});

function showMicError(err) {
  ui.micErrorText.textContent = micErrorText(err);
  ui.micError.hidden = false;
  renderMic();
}

function hideMicError() {
  ui.micError.hidden = true;
}


function micErrorText(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. Allow the microphone for this site (the icon at the left of the address bar, or the browser's site settings), then press Retry. You can keep listening meanwhile.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one, then press Retry.";
    case "NotReadableError":
    case "AbortError":
      return "The microphone could not be opened; another application may be using it. Free it, then press Retry.";
    case "InsecureContextError":
      return err.message;
    case "RelayError":
      return `The relay did not accept the microphone (${err.code}: ${err.relayMessage}).`;
    default:
      return `The microphone could not be published: ${err?.name || "Error"}: ${err?.message || err}.`;
  }
}

// ---- rendering ----

function showView(which) {
  ui.joinView.hidden = which !== "join";
  ui.roomView.hidden = which !== "room";
}

function renderStatus({ ws, sub, pub, rtt, reconnecting }) {
  ui.status.dataset.ws = reconnecting ? "connecting" : ws;
  if (reconnecting && room.self) {
    ui.status.textContent = `Reconnecting… · sub ${sub}${pub !== "none" ? ` · pub ${pub}` : ""}`;
    ui.status.classList.add("warn");
    return;
  }
  if (ws === "closed" && !room.self) {
    ui.status.textContent = "Not connected";
    ui.status.classList.remove("warn");
    return;
  }
  const parts = [`WebSocket ${ws}`, `sub ${sub}`];
  if (pub !== "none" || canPublish(room.self?.role)) parts.push(`pub ${pub}`);
  if (rtt !== null && rtt !== undefined && ws === "open") parts.push(`${rtt} ms`);
  ui.status.textContent = parts.join(" · ");
  const bad = (s) => s === "failed" || s === "disconnected";
  ui.status.classList.toggle("warn", bad(sub) || bad(pub));
}

function renderAudience() {
  const n = room.audience;
  ui.audience.textContent = `${n} listening`;
}

const ROLE_ORDER = { host: 0, guest: 1, remote: 2, audience: 3 };
const isHost = () => room.self?.role === "host";

function renderRoom() {
  renderAudience();
  renderMic();
  renderListener();
  if (client) renderStatus(client.state);

  const people = [...room.participants.values()].sort(
    (a, b) =>
      (b.id === room.self?.id) - (a.id === room.self?.id) ||
      (ROLE_ORDER[a.role] ?? 3) - (ROLE_ORDER[b.role] ?? 3) ||
      a.name.localeCompare(b.name),
  );
  // Tiles are rebuilt on every change; meters re-collect their elements.
  for (const m of meters) m.els = [];
  if (local?.meter) local.meter.els.push(ui.micMeter);
  // Remote participants (a linked room's hosts and guests) are on the mic too.
  ui.tiles.replaceChildren(...people.filter((p) => canPublish(p.role) || p.role === "remote").map(tile));
  pk.render();

  const host = isHost();
  ui.queueCard.hidden = !host;
  ui.audienceCard.hidden = !host;
  if (host) {
    const queued = room.queue.filter((id) => room.participants.has(id));
    ui.queue.replaceChildren(...queued.map(queueRow));
    ui.queueEmpty.hidden = queued.length > 0;
    ui.queueCount.textContent = queued.length ? `(${queued.length})` : "";
    const listeners = people.filter((p) => p.role === "audience");
    ui.audienceList.replaceChildren(...listeners.map(audienceRow));
    ui.audienceEmpty.hidden = listeners.length > 0;
  }
  renderSpeaking();
}

// A tile is one person on the mic: name, role, muted, a level meter, and
// for hosts the moderation buttons.
function tile(p) {
  const isSelf = p.id === room.self?.id;
  const received = isSelf ? [] : remote.get(p.id) || [];
  const meter = isSelf ? local?.meter : received[0]?.meter;
  const el = meterElement(meter);
  el.classList.add("wide");
  const controls = [];
  if (isHost() && !isSelf) {
    controls.push(
      button(p.muted ? "Unmute" : "Mute", "mute", () => client?.mute(p.id, !p.muted)),
    );
    if (p.role === "guest") {
      controls.push(button("Take off the mic", "release", () => client?.releaseMic(p.id)));
    }
    // A remote participant belongs to the linked room: muted here only,
    // never kicked from here.
    if (p.role !== "remote") controls.push(button("Kick", "kick", () => confirmKick(p), "danger"));
  }
  const hasAudio = isSelf ? !!local : received.length > 0 || p.tracks.size > 0;
  return h(
    "li",
    { className: "tile", dataset: { id: p.id, role: p.role, muted: String(!!p.muted) } },
    h("div", { className: "avatar", "aria-hidden": "true" }, initials(p.name)),
    h(
      "div",
      { className: "tile-body" },
      h(
        "div",
        { className: "who" },
        h("span", { className: "name" }, p.name),
        isSelf ? h("span", { className: "tag you" }, "you") : null,
        h("span", { className: `tag role role-${p.role}` }, p.role === "remote" ? `room ${p.room}` : p.role),
        p.muted ? h("span", { className: "tag muted" }, "muted") : null,
      ),
      hasAudio ? el : h("p", { className: "no-tracks" }, "connecting audio…"),
    ),
    controls.length ? h("div", { className: "tile-actions" }, ...controls) : null,
  );
}

function queueRow(id) {
  const p = room.participants.get(id);
  return h(
    "li",
    { className: "row", dataset: { id } },
    h("span", { className: "name" }, p?.name ?? id),
    h(
      "span",
      { className: "row-actions" },
      button("Approve", "approve", () => client?.acceptMic(id), "primary"),
      button("Reject", "reject", () => client?.rejectMic(id)),
    ),
  );
}

function audienceRow(p) {
  const queued = room.queue.includes(p.id);
  return h(
    "li",
    { className: "row", dataset: { id: p.id } },
    h("span", { className: "name" }, p.name),
    h(
      "span",
      { className: "row-actions" },
      queued ? h("span", { className: "tag" }, "asking") : button("Invite", "invite", () => client?.inviteToMic(p.id)),
      button("Kick", "kick", () => confirmKick(p), "danger"),
    ),
  );
}

function confirmKick(p) {
  // A confirm dialog would block automation and phones alike; the button
  // is red and the action is logged instead.
  client?.kick(p.id);
}

function button(text, action, onclick, className = "") {
  return h("button", { type: "button", className, dataset: { action }, onclick }, text);
}

function initials(name) {
  const parts = name.trim().split(/\s+/).slice(0, 2);
  return parts.map((w) => [...w][0] ?? "").join("").toUpperCase() || "?";
}

function renderListener() {
  const listening = room.self?.role === "audience";
  ui.listener.hidden = !listening;
  if (!listening) return;
  const s = room.micState;
  ui.requestMic.hidden = s !== "none";
  ui.cancelRequest.hidden = s !== "requested";
  ui.acceptInvite.hidden = s !== "invited";
  ui.declineInvite.hidden = s !== "invited";
  ui.listenerState.textContent =
    s === "requested"
      ? "You asked for the mic; waiting for a host."
      : s === "invited"
        ? "A host invites you to the mic."
        : client?.listen === "mix"
          ? "You are listening to the room's mix."
          : "You are listening.";
}

function renderSpeaking() {
  for (const li of ui.tiles.children) {
    const level = room.speaking.get(li.dataset.id) || 0;
    li.classList.toggle("speaking", level > 0.05);
    li.style.setProperty("--speaking", level.toFixed(2));
  }
}

function dequeue(id) {
  const i = room.queue.indexOf(id);
  if (i >= 0) room.queue.splice(i, 1);
}

function micRejectedText(self, participant, by, reason) {
  const who = self ? "Your" : `${nameOf(participant)}'s`;
  switch (reason) {
    case "cancelled":
      return `${self ? "You" : nameOf(participant)} withdrew the mic request.`;
    case "timeout":
      return `${who} mic request or invitation expired.`;
    case "no_host":
      return `${who} mic request ended: no host is in the room.`;
    default:
      return `${by ? nameOf(by) : "Someone"} declined ${self ? "your" : `${nameOf(participant)}'s`} mic request or invitation.`;
  }
}

ui.requestMic.addEventListener("click", () => {
  if (client?.requestMic()) {
    room.micState = "requested";
    renderRoom();
  }
});
ui.cancelRequest.addEventListener("click", () => {
  if (client?.cancelMicRequest()) {
    room.micState = "none";
    renderRoom();
  }
});
ui.acceptInvite.addEventListener("click", () => client?.acceptMic());
ui.declineInvite.addEventListener("click", () => {
  if (client?.rejectMic()) {
    room.micState = "none";
    renderRoom();
  }
});
ui.leaveMic.addEventListener("click", () => client?.leaveMic());

// ---- connection panel ----

let statsTimer = 0;
let lastStats = null;

function startStats() {
  if (statsTimer) return;
  statsTimer = setInterval(updateStats, 1000);
}

function resetStats() {
  clearInterval(statsTimer);
  statsTimer = 0;
  lastStats = null;
  for (const dd of ui.stats.querySelectorAll("dd")) dd.textContent = "–";
}

async function updateStats() {
  const c = client;
  if (!c) return;
  let cur;
  try {
    cur = await c.stats();
  } catch {
    return;
  }
  if (c !== client) return;
  const prev = lastStats;
  lastStats = cur;
  const set = (k, v) => {
    const dd = ui.stats.querySelector(`[data-stat="${k}"]`);
    if (dd) dd.textContent = v ?? "–";
  };
  const sub = cur.sub;
  const pub = cur.pub;
  const rtt = pub?.roundTripTime ?? sub?.roundTripTime;
  set("rtt", rtt !== null && rtt !== undefined ? `${Math.round(rtt * 1000)} ms` : cur.rtt !== null ? `${cur.rtt} ms (ping)` : null);
  set("jitter", sub?.jitter !== null && sub?.jitter !== undefined ? `${(sub.jitter * 1000).toFixed(1)} ms` : null);
  set("lost", sub || pub ? String((sub?.packetsLost ?? 0) + (pub?.packetsLost ?? 0)) : null);
  set("transport", sub?.transport ?? pub?.transport ?? null);
  if (!prev) return;
  const secs = (cur.at - prev.at) / 1000;
  if (sub && prev.sub) {
    const total = sub.totalSamplesReceived - prev.sub.totalSamplesReceived;
    const concealed = sub.concealedSamples - prev.sub.concealedSamples;
    set("concealment", total > 0 ? `${((100 * concealed) / total).toFixed(2)} %` : null);
    // Per track: the rate of one publisher's packets is its frame rate.
    const rates = sub.inbound.map((t) => {
      const p = prev.sub.inbound.find((x) => x.trackIdentifier === t.trackIdentifier);
      return p ? (t.packetsReceived - p.packetsReceived) / secs : 0;
    });
    const pps = rates.reduce((a, b) => a + b, 0);
    const top = Math.max(0, ...rates);
    set("received-rate", `${Math.round(pps)} pkt/s`);
    set("frame-received", top > 0 ? `${Math.round(1000 / top)} ms` : null);
  }
  if (pub && prev.pub) {
    const pps = (pub.packetsSent - prev.pub.packetsSent) / secs;
    set("sent-rate", `${Math.round(pps)} pkt/s`);
    set("frame-sent", pps > 0 ? `${Math.round(1000 / pps)} ms` : null);
  } else if (!pub) {
    set("sent-rate", null);
    set("frame-sent", null);
  }
}

// Known relay error codes, explained for people; the relay's own message
// follows.
const ERROR_HELP = {
  bad_request: "The relay did not understand a request.",
  unauthorized: "The join token was missing, expired or not valid. Ask for a new invite link.",
  forbidden: "Your role does not allow that.",
  not_found: "That person is not in the room any more, or has nothing pending.",
  room_full: "The room is full, or every seat on the mic is taken.",
  conflict: "That is already in progress.",
  internal: "The relay hit an internal error; try again.",
  shutting_down: "The relay is restarting; join again in a moment.",
  rate_limited: "The relay is holding back this page or your network (too many messages at once, or too many joins from your address), so it closed the connection. Wait a few seconds, then press Join.",
  unavailable: "The relay is full right now. Join again in a moment.",
};

function explain(code, message) {
  const help = ERROR_HELP[code];
  return help ? `${help} (${message})` : message;
}

// ---- banner: reconnecting, resumed, draining ----

let bannerTimer = 0;
let drainTimer = 0;

// showBanner shows one line above the room; kind (data-kind) is one of
// reconnecting, resumed, rejoined, draining. hideAfter ms, if given.
function showBanner(kind, text, hideAfter = 0) {
  clearTimeout(bannerTimer);
  bannerTimer = 0;
  if (kind !== "draining") stopDrainCountdown();
  ui.banner.dataset.kind = kind;
  ui.banner.textContent = text;
  ui.banner.hidden = false;
  if (hideAfter) bannerTimer = setTimeout(hideBanner, hideAfter);
}

function hideBanner() {
  clearTimeout(bannerTimer);
  bannerTimer = 0;
  stopDrainCountdown();
  ui.banner.hidden = true;
  ui.banner.dataset.kind = "";
  ui.banner.textContent = "";
}

// The draining banner counts down the seconds until the relay closes.
function startDrainCountdown(timeoutMs) {
  stopDrainCountdown();
  const end = performance.now() + Math.max(0, timeoutMs || 0);
  const render = () => {
    const secs = Math.max(0, Math.ceil((end - performance.now()) / 1000));
    showBanner(
      "draining",
      secs > 0
        ? `This relay is shutting down; reconnect in a moment (${secs} s left).`
        : "This relay is shutting down; reconnect in a moment.",
    );
    if (secs <= 0) stopDrainCountdown();
  };
  render();
  if (end > performance.now()) drainTimer = setInterval(render, 1000);
}

function stopDrainCountdown() {
  clearInterval(drainTimer);
  drainTimer = 0;
}

// ---- errors and log ----

function showError(code, message) {
  const item = h(
    "div",
    { className: "error" },
    h("code", {}, code),
    h("span", {}, message),
    h("button", { type: "button", className: "dismiss", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
  );
  ui.errors.append(item);
  while (ui.errors.children.length > 5) ui.errors.firstElementChild.remove();
}

function clearErrors() {
  ui.errors.replaceChildren();
}

function logLine(text) {
  const t = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  ui.log.prepend(h("li", {}, h("time", {}, t), " ", text));
  while (ui.log.children.length > 50) ui.log.lastElementChild.remove();
}

ui.invite.addEventListener("click", async () => {
  const link = inviteLink();
  try {
    await navigator.clipboard.writeText(link);
    logLine("Invite link copied.");
  } catch {
    prompt("Copy this link:", link);
  }
});

// h builds an element; text children are set as text, never as HTML.
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k in el && !k.includes("-")) el[k] = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

window.addEventListener("pagehide", () => {
  // Best effort: tell the relay now rather than after its timeout.
  client?.send({ type: "leave" });
});

// For automation and debugging (documented in docs/client.md): the live
// RelayClient, and its stats() summary.
window.relayPage = Object.freeze({
  get client() {
    return client;
  },
  stats: () => (client ? client.stats() : Promise.resolve(null)),
});

prefill();
renderStatus({ ws: "closed", sub: "none", pub: "none", rtt: null });
