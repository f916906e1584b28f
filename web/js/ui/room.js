// @ts-check
// A shared chat: who is in it (presence), its members and their roles, and — for its owner — inviting by
// username, changing nothing else about the chat's own views.

import { api } from "../api.js";
import { $, h, toast } from "./dom.js";

/**
 * @typedef {import("../api.js").Session} Session
 * @typedef {{user_id: string, username: string, role: string, added_at: string}} Member
 * @typedef {{user_id: string, username: string, devices: number}} Present
 */

export class Room {
  /** @param {{me: {id: string | null}, onLeft: () => void, onMembers: () => void}} options */
  constructor({ me, onLeft, onMembers }) {
    this.me = me;
    this.onLeft = onLeft;
    this.onMembers = onMembers; // the member list changed: whether the chat is shared may have too
    /** @type {Session | null} */
    this.session = null;
    /** @type {Member[]} */
    this.members = [];
    this.panel = $("#members-panel");
    this.toggle = $("#members-toggle");
    this.form = /** @type {HTMLFormElement} */ ($("#invite-form"));
    this.name = /** @type {HTMLInputElement} */ ($("#invite-name"));
    this.role = /** @type {HTMLSelectElement} */ ($("#invite-role"));
    this.toggle.addEventListener("click", () => this.setOpen(Boolean(this.panel.hidden)));
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const username = this.name.value.trim();
      if (!username || !this.session) return;
      try {
        await api.addMember(this.session.id, username, this.role.value);
        this.name.value = "";
        toast(`${username} can now join this chat.`);
        await this.load();
      } catch (err) {
        const e = /** @type {{code?: string, message: string}} */ (err);
        toast(e.code === "user_not_found" ? `There is no user called ${username}.` : `Could not invite: ${e.message}`, "error");
      }
    });
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    if (open && this.isOwner()) this.name.focus();
  }

  isOwner() {
    return (this.session?.role || "owner") === "owner";
  }

  /** More than one person may be in this chat: messages show who wrote them. */
  shared() {
    return this.members.length > 1 || !this.isOwner();
  }

  /** A chat was opened. @param {Session} session */
  async show(session) {
    this.session = session;
    this.members = [];
    this.setOpen(false);
    this.form.hidden = !this.isOwner() || session.is_archived;
    $("#presence").replaceChildren();
    this.renderMembers();
    await this.load();
  }

  async load() {
    const session = this.session;
    if (!session) return;
    try {
      const { items } = await api.members(session.id);
      if (this.session !== session) return;
      this.members = items;
    } catch {
      return; // the list stays as it was; the chat itself works on
    }
    this.renderMembers();
    this.onMembers();
  }

  renderMembers() {
    const others = Math.max(0, this.members.length - 1);
    this.toggle.textContent = others ? `Members (${this.members.length})` : "Share";
    const list = $("#member-list");
    list.replaceChildren(
      ...this.members.map((m) => {
        const self = m.user_id === this.me.id;
        const removable = m.role !== "owner" && (this.isOwner() || self);
        return h(
          "li.member",
          { dataset: { userId: m.user_id } },
          h("span.member-name", {}, self ? `${m.username} (you)` : m.username),
          h("span.chip.role", {}, m.role),
          removable
            ? h(
                "button.ghost.small",
                { type: "button", "aria-label": self ? "Leave this chat" : `Remove ${m.username}`, onclick: () => this.remove(m) },
                self ? "Leave" : "Remove",
              )
            : null,
        );
      }),
    );
  }

  /** @param {Member} member */
  async remove(member) {
    if (!this.session) return;
    try {
      await api.removeMember(this.session.id, member.user_id);
      if (member.user_id === this.me.id) {
        this.onLeft();
        return;
      }
      await this.load();
    } catch (err) {
      toast(`Could not remove: ${/** @type {Error} */ (err).message}`, "error");
    }
  }

  /** Who is here now (a `presence` event). @param {Present[]} users */
  presence(users) {
    const line = $("#presence");
    if (!users.length || (users.length === 1 && users[0].user_id === this.me.id && !this.shared())) {
      line.replaceChildren();
      return;
    }
    line.replaceChildren(
      h("span.muted", {}, "Here: "),
      ...users.map((u, i) =>
        h(
          "span.present",
          { dataset: { userId: u.user_id }, title: `${u.devices} device${u.devices === 1 ? "" : "s"}` },
          `${u.user_id === this.me.id ? `${u.username} (you)` : u.username}${i < users.length - 1 ? ", " : ""}`,
        ),
      ),
    );
    // someone new is here: the member list may have grown too
    if (users.some((u) => !this.members.some((m) => m.user_id === u.user_id))) this.load();
  }

  clear() {
    this.session = null;
    this.members = [];
    $("#presence").replaceChildren();
    $("#member-list").replaceChildren();
  }
}
