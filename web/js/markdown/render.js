// @ts-check
// Markdown in the page: marked's HTML (parse.js) sanitized by DOMPurify, code highlighted by highlight.js with a
// copy button, and an answer view that renders complete blocks once and re-renders only the open last block,
// at most once per animation frame (stream.js decides what is complete).

import DOMPurify from "dompurify";
import hljs from "highlight.js/core";
import bash from "highlight.js/languages/bash";
import javascript from "highlight.js/languages/javascript";
import json from "highlight.js/languages/json";
import python from "highlight.js/languages/python";
import sql from "highlight.js/languages/sql";
import typescript from "highlight.js/languages/typescript";
import xml from "highlight.js/languages/xml";
import yaml from "highlight.js/languages/yaml";
import { safeHref, toHtml } from "./parse.js";
import { completeLength, settle } from "./stream.js";

for (const [name, language] of Object.entries({ bash, javascript, json, python, sql, typescript, xml, yaml })) {
  hljs.registerLanguage(name, language);
}
hljs.registerAliases(["sh", "shell", "console"], { languageName: "bash" });
hljs.registerAliases(["js", "jsx", "mjs"], { languageName: "javascript" });
hljs.registerAliases(["ts", "tsx"], { languageName: "typescript" });
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["html", "svg"], { languageName: "xml" });
hljs.registerAliases(["yml"], { languageName: "yaml" });

const purify = DOMPurify(window);
// links: only http(s) and mailto, opened in a new tab that cannot reach back into this one
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName !== "A") return;
  const href = node.getAttribute("href");
  if (!href || !safeHref(href)) {
    node.removeAttribute("href");
    return;
  }
  node.setAttribute("target", "_blank");
  node.setAttribute("rel", "noopener noreferrer");
});
const PURIFY = {
  RETURN_DOM_FRAGMENT: true,
  ADD_ATTR: ["target"],
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "img", "svg", "math", "iframe"],
};

/**
 * Sanitized Markdown as nodes, code highlighted.
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function renderMarkdown(text) {
  const fragment = /** @type {DocumentFragment} */ (/** @type {unknown} */ (purify.sanitize(toHtml(text), PURIFY)));
  for (const code of fragment.querySelectorAll("pre > code")) decorate(/** @type {HTMLElement} */ (code));
  return fragment;
}

/** Highlight a code block and give it a copy button (labels by CSS: they are not part of the text). @param {HTMLElement} code */
function decorate(code) {
  const pre = /** @type {HTMLElement} */ (code.parentElement);
  const language = /language-([\w+-]+)/.exec(code.className)?.[1]?.toLowerCase() || "";
  if (language && hljs.getLanguage(language)) {
    code.innerHTML = hljs.highlight(code.textContent || "", { language, ignoreIllegals: true }).value;
    code.classList.add("hljs");
  }
  const wrap = document.createElement("div");
  wrap.className = "code-block";
  if (language) wrap.dataset.language = language;
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy-code";
  copy.setAttribute("aria-label", "Copy code");
  pre.replaceWith(wrap);
  wrap.append(copy, pre);
}

/** Copy the code of the block whose button was pressed (one listener for the whole page). */
document.addEventListener("click", async (event) => {
  const target = /** @type {Element | null} */ (event.target);
  const button = target?.closest?.("button.copy-code");
  if (!(button instanceof HTMLButtonElement)) return;
  const code = button.parentElement?.querySelector("code")?.textContent || "";
  try {
    await navigator.clipboard.writeText(code);
    button.dataset.copied = "true";
    button.setAttribute("aria-label", "Copied");
    setTimeout(() => {
      delete button.dataset.copied;
      button.setAttribute("aria-label", "Copy code");
    }, 2000);
  } catch {
    button.dataset.copied = "failed";
    button.setAttribute("aria-label", "Copy failed: select the code instead");
  }
});

/** An answer's text as Markdown, updated as it streams. `el` is the element to place in the page. */
export class MarkdownView {
  constructor() {
    this.el = document.createElement("div");
    this.el.className = "content markdown";
    /** the complete blocks, rendered once */
    this.done = document.createElement("div");
    this.done.className = "md-done";
    /** the open last block, re-rendered as it grows */
    this.open = document.createElement("div");
    this.open.className = "md-open";
    this.el.append(this.done, this.open);
    /** @type {string} what is rendered */
    this.text = "";
    this.streaming = false;
    /** how much of `text` is in `done` */
    this.offset = 0;
    /** @type {string} */
    this.wanted = "";
    this.frame = 0;
    /** @type {(() => void) | null} called after each render */
    this.onRender = null;
  }

  /**
   * Show `text`; while streaming, at the next animation frame (many deltas, one render).
   * @param {string} text @param {boolean} streaming
   */
  set(text, streaming) {
    if (text === this.text && streaming === this.streaming && !this.frame) return;
    this.wanted = text;
    this.streaming = streaming;
    this.el.classList.toggle("streaming", streaming);
    if (!streaming) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
      this.flush();
    } else if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.flush();
      });
    }
  }

  flush() {
    const text = this.wanted;
    if (!text.startsWith(this.text.slice(0, this.offset))) {
      // not a continuation (an edit, a resync that replaced the text): start over
      this.offset = 0;
      this.done.replaceChildren();
    }
    let tail = text.slice(this.offset);
    const complete = this.streaming ? completeLength(tail) : 0;
    if (complete) {
      this.done.append(renderMarkdown(tail.slice(0, complete)));
      this.offset += complete;
      tail = tail.slice(complete);
    }
    this.open.replaceChildren(renderMarkdown(this.streaming ? settle(tail) : tail));
    this.text = text;
    this.el.classList.toggle("empty", !text); // "Thinking" until the first words (by CSS: not part of the text)
    if (this.onRender) this.onRender();
  }
}
