// Cross-room co-streaming ("PK", docs/protocol.md): a host invites
// another room, a host of that room accepts or declines, and while the
// rooms are linked each one's publishers show up in the other as
// participants with role "remote". This module keeps the link's state and
// draws its card; app.js hands it the relay's events.

const $ = (sel) => document.querySelector(sel);

const ui = {
  card: $("#pk-card"),
  form: $("#pk-form"),
  room: $("#pk-room"),
  incoming: $("#pk-incoming"),
  incomingText: $("#pk-incoming-text"),
  accept: $("#pk-accept"),
  reject: $("#pk-reject"),
  linked: $("#pk-linked"),
  state: $("#pk-state"),
  end: $("#pk-end"),
};

const REJECTED = {
  rejected: "declined",
  timeout: "was not answered in time",
  cancelled: "was withdrawn",
  no_host: "ended: a room has no host",
};

/**
 * @param {{client: () => any, isHost: () => boolean, log: (text: string) => void}} deps
 */
export function createPK({ client, isHost, log }) {
  // none; inviting (we invited room); invited (room invited us, by);
  // linked (with room).
  let pk = { state: "none", room: "", by: "" };

  function render() {
    const host = isHost();
    ui.card.hidden = !host && pk.state !== "linked";
    ui.form.hidden = !host || pk.state !== "none";
    ui.incoming.hidden = !host || pk.state !== "invited";
    ui.linked.hidden = pk.state !== "linked" && pk.state !== "inviting";
    ui.end.hidden = !host;
    ui.card.dataset.state = pk.state;
    if (pk.state === "invited") ui.incomingText.textContent = `${pk.by} invites this room to link with room ${pk.room}.`;
    if (pk.state === "inviting") {
      ui.state.textContent = `Invited room ${pk.room}; waiting for its host.`;
      ui.end.textContent = "Withdraw";
    }
    if (pk.state === "linked") {
      ui.state.textContent = `Linked with room ${pk.room}: both rooms hear each other.`;
      ui.end.textContent = "End the link";
    }
  }

  function set(state, room = "", by = "") {
    pk = { state, room, by };
    render();
  }

  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    const room = ui.room.value.trim();
    if (room && client()?.pkInvite(room)) {
      log(`You invited room ${room} to link.`);
      set("inviting", room);
    }
  });
  ui.accept.addEventListener("click", () => client()?.pkAccept(pk.room));
  ui.reject.addEventListener("click", () => {
    if (client()?.pkReject(pk.room)) set("none");
  });
  ui.end.addEventListener("click", () => client()?.pkEnd(pk.room));

  return {
    render,
    reset: () => set("none"),
    /** A room joined while linked shows its remote participants: linked with their room. */
    joined(participants) {
      const remote = participants.find((p) => p.role === "remote" && p.room);
      set(remote ? "linked" : "none", remote?.room ?? "");
    },
    /** A refused pk_invite (an error while inviting) leaves nothing pending. */
    failed() {
      if (pk.state === "inviting") set("none");
    },
    on(type, e) {
      switch (type) {
        case "pk_invited":
          log(`${e.by?.name ?? "A host"} of room ${e.room} invites this room to link.`);
          set("invited", e.room, e.by?.name ?? "A host");
          break;
        case "pk_started":
          log(`Linked with room ${e.room}.`);
          set("linked", e.room);
          break;
        case "pk_rejected":
          log(`The invitation between this room and room ${e.room} ${REJECTED[e.reason] ?? `ended (${e.reason})`}.`);
          if (pk.room === e.room) set("none");
          break;
        case "pk_ended":
          log(`The link with room ${e.room} ended${e.reason === "no_host" ? ": a room has no host" : ""}.`);
          if (pk.room === e.room) set("none");
          break;
      }
    },
  };
}
