// @ts-check
// An answer's sources: the list of passages it used, its `[n]` markers turned into links to them, and opening a
// passage from its marker (the list opens, the passage is highlighted and takes the focus).

import { audioUrl } from "../api.js";
import { h } from "./dom.js";

/**
 * @typedef {import("../chat/store.js").Message} Message
 * @typedef {import("../chat/store.js").Source} Source
 * @typedef {import("../chat/store.js").Attachment} Attachment
 */

/** The number an answer cites a source by: `n` from the server, else its place in the list. @param {Source} source @param {number} index */
export const markerOf = (source, index) => source.n ?? index + 1;

/** @param {string} messageId @param {number} n */
const sourceId = (messageId, n) => `src-${messageId}-${n}`;

/**
 * The collapsible list of an answer's passages, or null when it used none. A passage from a message's attachment
 * names it with a link to the attachment itself.
 * @param {Message} message @param {(documentName: string) => Attachment | null} [attachmentNamed]
 */
export function sourcesBlock(message, attachmentNamed = () => null) {
  const sources = message.rag_context?.sources || [];
  if (!sources.length) return null;
  return h(
    "details.sources",
    {},
    h("summary", {}, `Sources (${sources.length})`),
    h(
      "ol",
      {},
      sources.map((s, i) => {
        const n = markerOf(s, i);
        return h(
          "li.source",
          { id: sourceId(message.id, n), tabindex: "-1", dataset: { n: String(n) } },
          h(
            "div.source-head",
            {},
            h("span.source-n", { "aria-hidden": "true" }, `${n}`),
            sourceName(s, attachmentNamed(s.document_name)),
            s.page ? h("span.muted", {}, ` · page ${s.page}`) : null,
            s.heading ? h("span.muted", {}, ` · ${s.heading}`) : null,
            h("span.score", { title: "Relevance score" }, `score ${Number(s.score).toFixed(2)}`),
          ),
          h("blockquote.snippet", {}, s.snippet),
        );
      }),
    ),
  );
}

/** @param {Source} source @param {Attachment | null} attachment */
function sourceName(source, attachment) {
  if (!attachment) return h("span.source-name", {}, source.document_name);
  return h(
    "a.source-name.source-attachment",
    { href: audioUrl(attachment.url), target: "_blank", rel: "noopener", dataset: { attachment: attachment.id } },
    `${attachment.thumbnail_url ? "Image" : "File"}: ${attachment.filename}`,
  );
}

/**
 * `[n]` markers (spans from the Markdown) with a matching source become links to it; the others stay text.
 * @param {HTMLElement} root  the answer's rendered text @param {Message} message
 */
export function linkCitations(root, message) {
  const sources = message.rag_context?.sources || [];
  if (!sources.length) return;
  /** @type {Map<number, Source>} */
  const byMarker = new Map(sources.map((s, i) => [markerOf(s, i), s]));
  for (const span of root.querySelectorAll("span.cite")) {
    const n = Number(/** @type {HTMLElement} */ (span).dataset.cite);
    const source = byMarker.get(n);
    if (!source) continue;
    const label = `Source ${n}: ${source.document_name}${source.page ? `, page ${source.page}` : ""}`;
    const dataset = { cite: String(n), message: message.id };
    span.replaceWith(h("a.cite", { href: `#${sourceId(message.id, n)}`, title: label, "aria-label": label, dataset }, `[${n}]`));
  }
}

/**
 * Open an answer's sources at passage `n`, highlighted and focused.
 * @param {HTMLElement} li  the answer's element @param {string} messageId @param {number} n
 */
export function openSource(li, messageId, n) {
  const details = li.querySelector("details.sources");
  const passage = li.querySelector(`#${CSS.escape(sourceId(messageId, n))}`);
  if (!details || !(passage instanceof HTMLElement)) return;
  details.setAttribute("open", "");
  for (const other of details.querySelectorAll(".source.highlighted")) other.classList.remove("highlighted");
  passage.classList.add("highlighted");
  passage.focus({ preventScroll: true });
  passage.scrollIntoView({ block: "nearest" });
}
