// The page: a join form, then the room (participants, their tracks, the
// microphone) for as long as the session lasts. Protocol details live in
// client.js; this file only turns its events into DOM.

import { RelayClient, RelayError, canPublish, defaultRelayURL } from "./client.js";

const $ = (sel) => document.querySelector(sel);

const ui = {
  status: $("#status"),
  errors: $("#errors"),
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
  participants: $("#participants"),
  unlock: $("#unlock-audio"),
  log: $("#log"),
  sinks: $("#sinks"),
};

// ---- session state ----

let client = null;
let expectClose = false; // set when we leave or are kicked
let audioCtx = null;

const room = {
  name: "",
  self: null, // {id, name, role}
  participants: new Map(), // id -> {id, name, role, muted, tracks: Map(id -> {id, kind})}
  audience: 0,
  speaking: new Map(), // participant id -> level 0..1
  selfMuted: false,
};

// Remote tracks as they arrive on sub, by publisher (= stream id).
const remote = new Map(); // participant id -> [{track, audio, meter}]
let local = null; // {track, meter} while the microphone is published

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
}

function randomName() {
  const a = ["Calm", "Brave", "Quiet", "Swift", "Bright", "Lucky", "Gentle", "Bold"];
  const b = ["Otter", "Finch", "Panda", "Heron", "Lynx", "Koala", "Robin", "Fox"];
  const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
  return `${pick(a)} ${pick(b)} ${Math.floor(Math.random() * 90) + 10}`;
}

// Keeps the address bar in step with the session so a reload rejoins the
// same room. A token stays only if it came in the link.
function rememberInURL({ room: r, name, role }) {
  const q = new URLSearchParams(location.search);
  q.set("room", r);
  q.set("name", name);
  q.set("role", role);
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

async function start(req) {
  expectClose = false;
  client = new RelayClient();
  wire(client);
  await client.connect(defaultRelayURL());
  const joined = await client.join(req);
  if (canPublish(req.role) && !canPublish(joined.participant.role)) {
    logLine(`The relay let you in as ${joined.participant.role}.`);
  }
}

async function stop() {
  expectClose = true;
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
    showError(code, message);
  });
  on("close", (e) => {
    // Before joined, the submit handler reports the failure and cleans up.
    if (!room.self) return;
    if (!expectClose) {
      const { code, reason } = e.detail;
      const why = reason ? `: ${reason}` : "";
      showError("disconnected", `The relay closed the connection (code ${code}${why}).`);
    }
    client = null;
    resetRoom();
    showView("join");
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
    const p = room.participants.get(participant);
    room.participants.delete(participant);
    room.speaking.delete(participant);
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
    if (participant === room.self?.id) {
      room.self.role = role;
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
  on("mic_requested", (e) => logLine(`${nameOf(e.detail.participant)} asks for the mic.`));
  on("mic_invited", (e) => logLine(`${nameOf(e.detail.by)} invites you to the mic.`));
  on("mic_rejected", (e) => logLine(`${nameOf(e.detail.by)} declined.`));
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
  ui.roomName.textContent = msg.room;
  logLine(`Joined ${msg.room} as ${msg.participant.name} (${msg.participant.role}).`);
  showView("room");
  renderRoom();
}

function upsert(p) {
  const prev = room.participants.get(p.id);
  const tracks = new Map((p.tracks || []).map((t) => [t.id, t]));
  room.participants.set(p.id, {
    id: p.id,
    name: p.name,
    role: p.role,
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
  ui.participants.replaceChildren();
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
  const tick = () => {
    if (meters.size === 0) {
      meterLoop = 0;
      return;
    }
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

function renderStatus({ ws, sub, pub, rtt }) {
  ui.status.dataset.ws = ws;
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

const ROLE_ORDER = { host: 0, guest: 1, audience: 2 };

function renderRoom() {
  renderAudience();
  renderMic();
  if (client) renderStatus(client.state);

  const list = [...room.participants.values()].sort(
    (a, b) =>
      (b.id === room.self?.id) - (a.id === room.self?.id) ||
      (ROLE_ORDER[a.role] ?? 3) - (ROLE_ORDER[b.role] ?? 3) ||
      a.name.localeCompare(b.name),
  );
  // Rows are rebuilt on every change; meters re-collect their elements.
  for (const m of meters) m.els = [];
  if (local?.meter) local.meter.els.push(ui.micMeter);
  ui.participants.replaceChildren(...list.map(participantRow));
  renderSpeaking();
}

function participantRow(p) {
  const isSelf = p.id === room.self?.id;
  const received = isSelf ? [] : remote.get(p.id) || [];
  const tracks = [...p.tracks.values()];

  const chips = tracks.map((t, i) => {
    // Match by track id when the browser kept it, else by order.
    const r = received.find((x) => x.track.id === t.id) || received[i];
    const meter = isSelf ? local?.meter : r?.meter;
    return h("li", { className: "track", title: t.id }, t.kind, meterElement(meter));
  });
  // Tracks received before their track_published arrived.
  for (const r of received.slice(tracks.length)) {
    chips.push(h("li", { className: "track" }, r.track.kind, meterElement(r.meter)));
  }

  return h(
    "li",
    { className: "participant", dataset: { id: p.id } },
    h(
      "div",
      { className: "who" },
      h("span", { className: "name" }, p.name),
      isSelf ? h("span", { className: "tag you" }, "you") : null,
      h("span", { className: `tag role role-${p.role}` }, p.role),
      p.muted ? h("span", { className: "tag muted" }, "muted") : null,
    ),
    chips.length
      ? h("ul", { className: "tracks" }, ...chips)
      : h("p", { className: "no-tracks" }, canPublish(p.role) ? "no tracks yet" : "listening"),
  );
}

function renderSpeaking() {
  for (const li of ui.participants.children) {
    const level = room.speaking.get(li.dataset.id) || 0;
    li.classList.toggle("speaking", level > 0.05);
  }
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

prefill();
renderStatus({ ws: "closed", sub: "none", pub: "none", rtt: null });
