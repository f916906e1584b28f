// @ts-check
// Small DOM helpers: element builder, toasts, icons, two-step buttons, and times that keep themselves current.

import { relativeTime } from "../time.js";

/**
 * @typedef {{[key: string]: string | number | boolean | null | undefined | EventListener | {[key: string]: string}}} Attrs
 * @typedef {Node | string | number | null | undefined | false | Child[]} Child
 */

/**
 * h("button.primary", {type: "button", onclick}, "Send") → an element.
 * @param {string} tag @param {Attrs} [attrs] @param {...Child} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset" && typeof value === "object") Object.assign(el.dataset, value);
    else if (key === "text") el.textContent = String(value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** @param {HTMLElement} el @param {Child[]} children */
function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * The element for a selector (the page's own elements: they exist).
 * @template {HTMLElement} [E=HTMLElement]
 * @param {string} selector @param {ParentNode} [root]
 * @returns {E}
 */
export const $ = (selector, root = document) => /** @type {E} */ (root.querySelector(selector));

/** A short message at the top of the page; errors are alerts. @param {string} text @param {"info" | "error"} [kind] */
export function toast(text, kind = "info") {
  const box = $("#toasts");
  const item = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status" }, text);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 7000 : 4000);
}

/** A clock time for a tooltip. @param {string | null | undefined} iso */
export function fullTime(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}

/** A `<time>` that says how long ago `iso` was, and keeps saying it (see `keepTimesCurrent`). @param {string} iso */
export function timeAgo(iso) {
  return h("time", { datetime: iso, title: fullTime(iso), dataset: { relative: "" } }, relativeTime(iso));
}

/** Refresh every relative time in the page: each half minute, and when the page is shown again. */
export function keepTimesCurrent() {
  const refresh = () => {
    for (const el of document.querySelectorAll("time[data-relative]")) {
      const text = relativeTime(el.getAttribute("datetime") || "");
      if (el.textContent !== text) el.textContent = text;
    }
  };
  setInterval(refresh, 30_000);
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && refresh());
}

/**
 * Two-step confirmation without a blocking dialog: the first click arms the button for a few seconds.
 * @param {HTMLElement} button @param {string} label @param {() => Promise<void>} action
 */
export function armed(button, label, action) {
  const original = button.textContent;
  const originalLabel = button.getAttribute("aria-label");
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const reset = () => {
    button.classList.remove("armed");
    button.textContent = original;
    if (originalLabel) button.setAttribute("aria-label", originalLabel);
  };
  button.addEventListener("click", async () => {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = label;
      button.setAttribute("aria-label", label);
      timer = setTimeout(reset, 4000);
      return;
    }
    clearTimeout(timer);
    button.toggleAttribute("disabled", true);
    try {
      await action();
    } finally {
      button.toggleAttribute("disabled", false);
      reset();
    }
  });
  // Escape takes the offer back
  button.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && button.classList.contains("armed")) {
      event.stopPropagation();
      clearTimeout(timer);
      reset();
    }
  });
}

/** @type {{[name: string]: string}} */
const ICONS = {
  speaker: "M4 9h4l5-4v14l-5-4H4zM16.5 8.5a5 5 0 0 1 0 7M19 6a8.5 8.5 0 0 1 0 12",
  stop: "M7 7h10v10H7z",
  play: "M8 5v14l11-7z",
  mic: "M12 3a3 3 0 0 1 3 3v5a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM5 11a7 7 0 0 0 14 0M12 18v3",
  file: "M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8zM14 3v5h5",
};

/** A small stroked SVG icon (emoji fonts are not everywhere). @param {string} name */
export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `icon icon-${name}`);
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}
