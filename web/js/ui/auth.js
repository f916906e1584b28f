// The login / register card.

import { api, storeAuth } from "../api.js";
import { $ } from "./dom.js";

export function setupAuth(onLoggedIn) {
  const form = $("#auth-form");
  const submit = $("#auth-submit");
  const error = $("#auth-error");
  const tabs = { login: $("#tab-login"), register: $("#tab-register") };
  let mode = "login";

  function setMode(next) {
    mode = next;
    for (const [name, tab] of Object.entries(tabs)) tab.setAttribute("aria-selected", String(name === next));
    for (const el of document.querySelectorAll(".register-only")) el.hidden = next !== "register";
    $("#auth-title").textContent = next === "login" ? "Log in" : "Create an account";
    submit.textContent = next === "login" ? "Log in" : "Create account";
    $("#auth-password").autocomplete = next === "login" ? "current-password" : "new-password";
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
    const username = $("#auth-username").value.trim();
    const password = $("#auth-password").value;
    if (username.length < 3) return (error.textContent = "The username needs at least 3 characters.");
    if (password.length < 8) return (error.textContent = "The password needs at least 8 characters.");
    submit.disabled = true;
    try {
      let reply;
      if (mode === "register") {
        const email = $("#auth-email").value.trim();
        reply = await api.register(email ? { username, password, email } : { username, password });
      } else {
        reply = await api.login(username, password);
      }
      storeAuth(reply);
      $("#auth-password").value = "";
      onLoggedIn(reply.user);
    } catch (err) {
      const messages = {
        invalid_credentials: "Wrong username or password.",
        username_taken: "That username is taken.",
        email_taken: "That email is already registered.",
      };
      error.textContent = messages[err.code] || err.message;
    } finally {
      submit.disabled = false;
    }
  });

  return {
    show(notice) {
      $("#app-view").hidden = true;
      $("#auth-view").hidden = false;
      const box = $("#auth-notice");
      box.hidden = !notice;
      box.textContent = notice || "";
      setMode("login");
      $("#auth-username").focus();
    },
  };
}
