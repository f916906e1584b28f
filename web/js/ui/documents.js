// @ts-check
// Documents: drag-and-drop upload with progress, ingestion status, delete.

import { api } from "../api.js";
import { $, armed, h, toast } from "./dom.js";

const ACCEPTED = /\.(txt|md|markdown|html?|pdf)$/i;
/** @type {{[status: string]: string}} */
const STATUS_TEXT = { pending: "Queued", processing: "Indexing", ready: "Ready", failed: "Failed" };

/**
 * @typedef {object} Document  a document as GET /documents lists it
 * @property {string} id
 * @property {string} filename
 * @property {string} status  "pending" | "processing" | "ready" | "failed"
 * @property {number} size_bytes
 * @property {number} chunk_count
 * @property {number} chunks_done
 * @property {string | null} [error]
 */

/** @param {number} bytes */
function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function setupDocuments() {
  const list = $("#document-list");
  const zone = $("#dropzone");
  const input = /** @type {HTMLInputElement} */ ($("#file-input"));
  /** @type {Map<string, {name: string, fraction: number}>} uploads under way, by a local key */
  const uploads = new Map();
  /** @type {Document[]} */
  let documents = [];
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pollTimer;

  /** @param {number} fraction @param {string} label */
  function progressBar(fraction, label) {
    const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
    return h(
      "div.progress",
      { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct), "aria-label": label },
      h("span", { style: `width:${pct}%` }),
    );
  }

  function render() {
    list.replaceChildren();
    for (const [key, upload] of uploads) {
      list.append(
        h(
          "li.document",
          { dataset: { upload: key } },
          h("div.doc-row", {}, h("span.doc-name", { title: upload.name }, upload.name), h("span.chip.pending", {}, "Uploading")),
          progressBar(upload.fraction, `Uploading ${upload.name}`),
        ),
      );
    }
    if (!documents.length && !uploads.size) {
      list.append(h("li.empty-note", {}, "No documents yet."));
      return;
    }
    for (const doc of documents) {
      const done = doc.chunk_count ? doc.chunks_done / doc.chunk_count : doc.status === "ready" ? 1 : 0;
      const remove = h(
        "button.icon-button.small.danger-hover",
        { type: "button", "aria-label": `Delete ${doc.filename}`, title: "Delete" },
        "✕",
      );
      armed(remove, "Delete?", async () => {
        try {
          await api.deleteDocument(doc.id);
          documents = documents.filter((d) => d.id !== doc.id);
          render();
          toast(`Deleted ${doc.filename}`);
        } catch (err) {
          toast(`Could not delete: ${/** @type {Error} */ (err).message}`, "error");
        }
      });
      const detail =
        doc.status === "failed"
          ? h("div.doc-error", {}, doc.error || "Ingestion failed")
          : doc.status === "ready"
            ? h("div.muted.small-text", {}, `${size(doc.size_bytes)} · ${doc.chunk_count} chunk${doc.chunk_count === 1 ? "" : "s"}`)
            : progressBar(done, `Indexing ${doc.filename}`);
      list.append(
        h(
          "li.document",
          { dataset: { id: doc.id, status: doc.status } },
          h(
            "div.doc-row",
            {},
            h("span.doc-name", { title: doc.filename }, doc.filename),
            h(
              `span.chip.${doc.status}`,
              {},
              doc.status === "processing" && doc.chunk_count ? `${Math.round(done * 100)}%` : STATUS_TEXT[doc.status] || doc.status,
            ),
            remove,
          ),
          detail,
        ),
      );
    }
  }

  async function refresh() {
    try {
      documents = (await api.listDocuments()).items;
    } catch (err) {
      const e = /** @type {import("../api.js").ApiError} */ (err);
      if (e.status !== 401) toast(`Could not load documents: ${e.message}`, "error");
      return;
    }
    render();
    clearTimeout(pollTimer);
    if (documents.some((d) => d.status === "pending" || d.status === "processing")) pollTimer = setTimeout(refresh, 1000);
  }

  /** @param {File[]} files */
  async function upload(files) {
    for (const file of files) {
      if (!ACCEPTED.test(file.name)) {
        toast(`${file.name}: only .txt, .md, .html and .pdf files can be added`, "error");
        continue;
      }
      const key = `${Date.now()}-${Math.random()}`;
      uploads.set(key, { name: file.name, fraction: 0 });
      render();
      try {
        await api.uploadDocument(file, (fraction) => {
          const state = uploads.get(key);
          if (state) state.fraction = fraction;
          const bar = list.querySelector(`[data-upload="${key}"] .progress span`);
          if (bar instanceof HTMLElement) bar.style.width = `${Math.round(fraction * 100)}%`;
        });
        toast(`Uploaded ${file.name}`);
      } catch (err) {
        toast(`${file.name}: ${/** @type {Error} */ (err).message}`, "error");
      } finally {
        uploads.delete(key);
      }
      await refresh();
    }
  }

  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  input.addEventListener("change", () => {
    upload([...(input.files || [])]);
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const name of ["dragleave", "dragend"]) zone.addEventListener(name, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    upload([...(event.dataTransfer?.files || [])]);
  });
  // a file dropped anywhere else must not navigate away from the app
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  return {
    refresh,
    stop() {
      clearTimeout(pollTimer);
      documents = [];
      list.replaceChildren();
    },
  };
}
