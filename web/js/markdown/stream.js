// @ts-check
// Streaming Markdown without flicker: an answer is cut into blocks that are complete (rendered once, never again)
// and the open last block, which is re-rendered as it grows after `settle` hides half-written syntax (an
// unclosed `**`, a link without its URL yet, a table before its separator row) so its text only grows.
// Pure (no DOM): node's test runner checks it.

import { markdown } from "./parse.js";

/**
 * How many leading characters of `text` are complete blocks: everything up to the blank line before the
 * last block. What follows may still change meaning (a list gets another item, a fence closes).
 * @param {string} text
 */
export function completeLength(text) {
  const tokens = markdown.lexer(text);
  let offset = 0;
  let blank = -1; // the end of the latest blank line, until a block follows it
  let complete = 0;
  for (const token of tokens) {
    offset += token.raw.length;
    if (token.type === "space") {
      if (token.raw.includes("\n\n")) blank = offset;
    } else if (blank >= 0) {
      complete = blank;
      blank = -1;
    }
  }
  const raw = tokens.map((t) => t.raw).join("");
  return text.startsWith(raw.slice(0, complete)) ? complete : 0; // marked normalized something: no commit
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const MARKUP_ONLY = /^\s*(#{1,6}|[-*+]|\d{1,9}[.)]?|>|[-=_*]+|`{1,2}|~{1,2})?\s*$/;
const TABLE_SEPARATOR = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const PARTIAL_FENCE = /^ {0,3}(`+|~+)[^`~]*$/;
const TRAILING_MARKERS = /[*~`]+$/;

/** Where a link, image or citation marker still open at the end of `line` starts, or -1. @param {string} line */
function openLinkStart(line) {
  const at = line.lastIndexOf("[");
  if (at < 0) return -1;
  const match = /^\[[^[\]]*(\](.*))?$/.exec(line.slice(at));
  if (!match) return -1;
  const start = at > 0 && line[at - 1] === "!" ? at - 1 : at;
  const after = match[2];
  if (after === undefined || after === "") return start; // `[text` or `[text]`: a `(` may follow
  if (!after.startsWith("(")) return -1;
  let depth = 0;
  for (const c of after) {
    if (c === "(") depth += 1;
    else if (c === ")" && --depth === 0) return -1; // the link is closed
  }
  return start;
}

/** @param {string} row */
function cells(row) {
  return row.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").length;
}

/** @param {string} text @param {string} marker */
function count(text, marker) {
  return text.split(marker).length - 1;
}

/**
 * The open last block as it can be shown now: half-written syntax hidden or closed, so that what is shown
 * only grows as the rest arrives. Only for the block still being written; a finished answer is shown as is.
 * @param {string} block
 */
export function settle(block) {
  const lines = block.split("\n");
  const last = lines[lines.length - 1];
  // inside a fenced code block: code grows as text; its opening line alone is held back
  const fences = lines.filter((line) => FENCE.test(line)).length;
  if (fences % 2 === 1) return PARTIAL_FENCE.test(last) ? lines.slice(0, -1).join("\n") : block;
  if (FENCE.test(last)) return block; // a code block just closed
  // a line of markup alone (`#`, `-`, `1.`, `|`) changes what the lines before it are: hold it back
  if (lines.length && last.trim() && MARKUP_ONLY.test(last)) return settle(lines.slice(0, -1).join("\n"));
  // a table is shown once its separator row is complete
  const paragraph = block.slice(block.lastIndexOf("\n\n") + 1).replace(/^\n/, "");
  const rows = paragraph.split("\n").filter((line) => line.trim());
  if (rows.length && rows.every((row) => row.trim().startsWith("|"))) {
    const complete = rows.length >= 2 && TABLE_SEPARATOR.test(rows[1]) && cells(rows[1]) === cells(rows[0]);
    if (!complete) return block.slice(0, block.length - paragraph.length).replace(/\n+$/, "");
  }
  let text = block;
  // a link, image or citation marker without its end yet
  const lineStart = text.lastIndexOf("\n") + 1;
  const link = openLinkStart(text.slice(lineStart));
  if (link >= 0) text = text.slice(0, lineStart + link);
  // markers at the very end open or half-close something: hold them back, then close what is open
  text = text.replace(TRAILING_MARKERS, "");
  const lastFence = lines.findLastIndex((line) => FENCE.test(line));
  const codeEnd = lastFence >= 0 ? lines.slice(0, lastFence + 1).join("\n").length : 0;
  const tail = text.slice(Math.max(codeEnd, text.lastIndexOf("\n\n") + 1));
  if (count(tail, "`") % 2 === 1) return `${text}\``;
  const prose = tail.replace(/`[^`]*`/g, "").replace(/^\s*[*+-]\s/gm, "");
  let closing = "";
  for (const marker of ["**", "~~", "*"]) {
    const n = marker === "*" ? count(prose.replaceAll("**", ""), "*") : count(prose, marker);
    if (n % 2 === 1) closing = marker + closing;
  }
  return closing ? text.replace(/\s+$/, "") + closing : text;
}
