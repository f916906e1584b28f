// @ts-check
// Parley's web client: wires the views together. No framework, no bundler.

import { api, clearAuth, setUnauthorizedHandler, storedAuth } from "./api.js";
import { setupAuth } from "./ui/auth.js";
import { setupChat } from "./ui/chat.js";
import { setupDocuments } from "./ui/documents.js";
import { $, keepTimesCurrent, toast } from "./ui/dom.js";
import { setupSessions } from "./ui/sessions.js";

/** @typedef {import("./api.js").User} User @typedef {import("./api.js").Session} Session */

const EXPIRED = "Your login has expired. Log in again to continue.";
/** @type {{id: string | null, username: string | null}} */
const me = { id: null, username: null };
/** @type {ReturnType<typeof setTimeout> | undefined} */
let expiryTimer;
keepTimesCurrent();

const auth = setupAuth((user) => start(user));
const sessions = setupSessions({ onOpen: (session) => openSession(session) });
const documents = setupDocuments();
const chat = setupChat({
  me,
  onSessionChanged: (session) => sessions.update(session),
  onLeft: () => sessions.refresh(),
  onExpired: () => expire(),
});

function showApp() {
  $("#auth-view").hidden = true;
  $("#app-view").hidden = false;
}

/** The token expired (or the server refused it): say so clearly, offer the way back to login. */
function expire() {
  clearTimeout(expiryTimer);
  if ($("#app-view").hidden) {
    clearAuth();
    auth.show(EXPIRED);
    return;
  }
  if ($("#banner").dataset.kind === "expired") return;
  clearAuth();
  chat.close();
  const banner = $("#banner");
  banner.hidden = false;
  banner.dataset.kind = "expired";
  $("#banner-text").textContent = EXPIRED;
  const button = $("#banner-action");
  button.hidden = false;
  button.textContent = "Log in again";
  button.onclick = () => logout(EXPIRED);
  button.focus();
}
setUnauthorizedHandler(() => expire());

/** Say "expired" when the token's lifetime ends (timers cap at ~24 days: re-check until then). */
function watchExpiry() {
  clearTimeout(expiryTimer);
  const stored = storedAuth();
  if (!stored?.expiresAt) return;
  const left = stored.expiresAt - Date.now();
  if (left <= 0) return expire();
  expiryTimer = setTimeout(watchExpiry, Math.min(left, 2 ** 31 - 1));
}

/** @param {string} [notice] */
function logout(notice) {
  clearTimeout(expiryTimer);
  clearAuth();
  chat.close();
  sessions.clear();
  documents.stop();
  $("#whoami").textContent = "";
  $("#banner").hidden = true;
  delete $("#banner").dataset.kind;
  auth.show(notice);
}

/** @param {Session} session */
async function openSession(session) {
  sessions.setCurrent(session.id);
  closeDrawer();
  const url = new URL(location.href);
  url.hash = session.id;
  history.replaceState(null, "", url);
  await chat.open(session);
}

/** @param {User} user */
async function start(user) {
  Object.assign(me, { id: user.id, username: user.username });
  $("#whoami").textContent = user.username;
  delete $("#banner").dataset.kind;
  $("#banner").hidden = true;
  showApp();
  watchExpiry();
  api.speechStatus().then(chat.setSpeech, () => {}); // optional: the page works without it
  const [list] = await Promise.all([sessions.refresh(), documents.refresh()]);
  const wanted = location.hash.slice(1);
  const target = (wanted && (sessions.find(wanted) || (await api.getSession(wanted).catch(() => null)))) || null;
  if (target) await openSession(target);
  else if (list.length) await openSession(list[0]);
  else chat.close();
}

// new chat (also from the welcome screen, which offers the first upload too)
async function newChat() {
  try {
    const session = await api.createSession({ session_type: "mixed" });
    sessions.update(session);
    await openSession(session);
  } catch (err) {
    const e = /** @type {import("./api.js").ApiError} */ (err);
    if (e.status !== 401) toast(`Could not create a chat: ${e.message}`, "error");
  }
}
$("#new-session").addEventListener("click", newChat);
$("#empty-new-chat").addEventListener("click", newChat);
$("#empty-upload").addEventListener("click", () => $("#file-input").click());

// end the login on the server too (its token, and its sockets everywhere), then here
$("#logout").addEventListener("click", () => {
  api
    .logout()
    .catch(() => {})
    .finally(() => logout("You are logged out."));
});

// the skip link lands in the message box (a fragment link alone would only scroll there)
$(".skip-link").addEventListener("click", (event) => {
  const box = $("#composer-input");
  if (box.offsetParent === null) return; // no chat open: nothing to skip to
  event.preventDefault();
  box.focus();
});

// the phone-sized drawer
const menu = $("#menu-button");
function closeDrawer() {
  document.body.classList.remove("drawer-open");
  menu.setAttribute("aria-expanded", "false");
  $("#scrim").hidden = true;
}
menu.addEventListener("click", () => {
  const open = !document.body.classList.contains("drawer-open");
  document.body.classList.toggle("drawer-open", open);
  menu.setAttribute("aria-expanded", String(open));
  $("#scrim").hidden = !open;
});
$("#scrim").addEventListener("click", closeDrawer);
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !document.body.classList.contains("drawer-open")) return;
  closeDrawer();
  menu.focus(); // back to what opened it
});

// boot: a stored, unexpired token goes straight to the app
(async () => {
  const stored = storedAuth();
  if (!stored || (stored.expiresAt && stored.expiresAt <= Date.now())) {
    if (stored) clearAuth();
    auth.show(stored ? EXPIRED : null);
    return;
  }
  try {
    const user = await api.me();
    await start(user);
  } catch (err) {
    const e = /** @type {import("./api.js").ApiError} */ (err);
    if (e.status === 401) return; // expire() already ran
    auth.show(`The server is not reachable: ${e.message}`);
  }
})();
