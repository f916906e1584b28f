// @ts-check
// The chat list: newest activity first, create, show archived, restore.

import { api } from "../api.js";
import { $, h, timeAgo, toast } from "./dom.js";

/** @typedef {import("../api.js").Session} Session @param {Session} s */
export const activity = (s) => s.last_message_at || s.created_at;
/** @param {Session} s */
export const titleOf = (s) => s.title || "New chat";

/** @param {{onOpen: (session: Session) => void}} options */
export function setupSessions({ onOpen }) {
  const list = $("#session-list");
  const archivedList = $("#archived-list");
  const showArchived = /** @type {HTMLInputElement} */ ($("#show-archived"));
  /** @type {Session[]} */
  let sessions = [];
  /** @type {Session[]} */
  let archived = [];
  /** @type {string | null} */
  let currentId = null;

  /** @param {Session} session */
  function item(session) {
    const current = session.id === currentId;
    const count = session.message_count;
    return h(
      "li",
      {},
      h(
        "button.session-item",
        {
          type: "button",
          "aria-current": current ? "true" : null,
          dataset: { id: session.id },
          onclick: () => onOpen(session),
        },
        h("span.session-title", {}, titleOf(session)),
        h(
          "span.session-meta",
          {},
          timeAgo(activity(session)),
          count ? ` · ${count} message${count === 1 ? "" : "s"}` : "",
          session.role && session.role !== "owner" ? ` · shared with you (${session.role})` : "",
        ),
      ),
    );
  }

  function render() {
    sessions.sort((a, b) => activity(b).localeCompare(activity(a)));
    list.replaceChildren(...sessions.map(item));
    if (!sessions.length) list.append(h("li.empty-note", {}, "No chats yet."));
    archivedList.hidden = !showArchived.checked;
    archivedList.replaceChildren(...archived.map(item));
    if (showArchived.checked && !archived.length) archivedList.append(h("li.empty-note", {}, "No archived chats."));
  }

  async function refresh() {
    try {
      const [active, old] = await Promise.all([
        api.listSessions(false),
        showArchived.checked ? api.listSessions(true) : Promise.resolve({ items: [] }),
      ]);
      sessions = active.items;
      archived = old.items;
      render();
    } catch (err) {
      const e = /** @type {import("../api.js").ApiError} */ (err);
      if (e.status !== 401) toast(`Could not load chats: ${e.message}`, "error");
    }
    return sessions;
  }

  showArchived.addEventListener("change", refresh);

  return {
    refresh,
    /** @param {string} id */
    setCurrent(id) {
      currentId = id;
      render();
    },
    /** A session changed (renamed, archived, new activity): move it to the right list and place. @param {Session} session */
    update(session) {
      sessions = sessions.filter((s) => s.id !== session.id);
      archived = archived.filter((s) => s.id !== session.id);
      (session.is_archived ? archived : sessions).push(session);
      render();
    },
    /** @param {string} id */
    find: (id) => sessions.find((s) => s.id === id) || archived.find((s) => s.id === id),
    first: () => sessions[0],
    clear() {
      sessions = [];
      archived = [];
      currentId = null;
      list.replaceChildren();
      archivedList.replaceChildren();
    },
  };
}
