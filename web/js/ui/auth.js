// @ts-check
// The login / register card.

import { api, storeAuth } from "../api.js";
import { $ } from "./dom.js";

/** @param {(user: import("../api.js").User) => void} onLoggedIn */
export function setupAuth(onLoggedIn) {
  const form = $("#auth-form");
  const error = $("#auth-error");
  const submit = /** @type {HTMLButtonElement} */ ($("#auth-submit"));
  const username = /** @type {HTMLInputElement} */ ($("#auth-username"));
  const password = /** @type {HTMLInputElement} */ ($("#auth-password"));
  const email = /** @type {HTMLInputElement} */ ($("#auth-email"));
  const tabs = { login: $("#tab-login"), register: $("#tab-register") };
  let mode = "login";

  /** @param {"login" | "register"} next */
  function setMode(next) {
    mode = next;
    for (const [name, tab] of Object.entries(tabs)) tab.setAttribute("aria-selected", String(name === next));
    for (const el of document.querySelectorAll(".register-only")) /** @type {HTMLElement} */ (el).hidden = next !== "register";
    $("#auth-title").textContent = next === "login" ? "Log in" : "Create an account";
    submit.textContent = next === "login" ? "Log in" : "Create account";
    password.autocomplete = next === "login" ? "current-password" : "new-password";
    error.textContent = "";
  }
  tabs.login.addEventListener("click", () => setMode("login"));
  tabs.register.addEventListener("click", () => setMode("register"));
  for (const tab of Object.values(tabs)) {
    tab.addEventListener("keydown", (event) => {
      if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
        const other = tab === tabs.login ? tabs.register : tabs.login;
        other.focus();
        other.click();
      }
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const name = username.value.trim();
    const secret = password.value;
    const problem =
      name.length < 3 ? "The username needs at least 3 characters." : secret.length < 8 ? "The password needs at least 8 characters." : "";
    if (problem) {
      error.textContent = problem;
      return;
    }
    submit.disabled = true;
    try {
      let reply;
      if (mode === "register") {
        const address = email.value.trim();
        const fields = { username: name, password: secret };
        reply = await api.register(address ? { ...fields, email: address } : fields);
      } else {
        reply = await api.login(name, secret);
      }
      storeAuth(reply);
      password.value = "";
      onLoggedIn(reply.user);
    } catch (err) {
      const e = /** @type {import("../api.js").ApiError} */ (err);
      /** @type {{[code: string]: string}} */
      const messages = {
        invalid_credentials: "Wrong username or password.",
        username_taken: "That username is taken.",
        email_taken: "That email is already registered.",
      };
      error.textContent = messages[e.code] || e.message;
    } finally {
      submit.disabled = false;
    }
  });

  return {
    /** @param {string | null} [notice] */
    show(notice) {
      $("#app-view").hidden = true;
      $("#auth-view").hidden = false;
      const box = $("#auth-notice");
      box.hidden = !notice;
      box.textContent = notice || "";
      setMode("login");
      username.focus();
    },
  };
}
