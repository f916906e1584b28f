// @ts-check
// Markdown → HTML for answers: GitHub-flavoured Markdown by marked, raw HTML shown as text (never markup), links
// only to http(s) and mailto, and `[n]` citation markers as spans the message view links to their passage.
// Pure (no DOM): node's test runner checks it; the browser sanitizes its output again (render.js).

import { Marked } from "marked";

const SAFE_LINK = /^(https?:|mailto:)/i;
const CITE = /^\[(\d{1,3})\](?![(:])/; // not a link's label, nor a definition

/** @param {string} text */
export function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** @param {string} href */
export function safeHref(href) {
  const trimmed = href.trim();
  return SAFE_LINK.test(trimmed) ? trimmed : null;
}

/**
 * A Marked instance for answers. `[n]` becomes `<span class="cite" data-cite="n">[n]</span>`.
 * @returns {Marked}
 */
function createMarked() {
  const md = new Marked({ gfm: true, breaks: false, async: false });
  md.use({
    extensions: [
      {
        name: "cite",
        level: "inline",
        /** @param {string} src */
        start: (src) => src.match(/\[\d/)?.index,
        /** @param {string} src */
        tokenizer(src) {
          const match = CITE.exec(src);
          return match ? { type: "cite", raw: match[0], n: Number(match[1]) } : undefined;
        },
        renderer: (token) => `<span class="cite" data-cite="${token.n}">[${token.n}]</span>`,
      },
    ],
    renderer: {
      // raw HTML from a model is shown as the text it is, never parsed as markup
      html: ({ text }) => escapeHtml(text),
      link({ href, title, tokens }) {
        const text = this.parser.parseInline(tokens);
        const safe = safeHref(href);
        if (!safe) return text;
        const titleAttr = title ? ` title="${escapeHtml(title)}"` : "";
        return `<a href="${escapeHtml(safe)}"${titleAttr} target="_blank" rel="noopener noreferrer">${text}</a>`;
      },
      image: ({ text }) => escapeHtml(text), // no remote images: their alt text
    },
  });
  return md;
}

export const markdown = createMarked();

/** Markdown → HTML (still to be sanitized before it meets the DOM). @param {string} text */
export function toHtml(text) {
  return /** @type {string} */ (markdown.parse(text));
}
