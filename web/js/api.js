// @ts-check
// REST client for /api/v1: JSON in and out, the bearer token from session storage.

/**
 * @typedef {{id: string, username: string, email?: string | null}} User
 * @typedef {object} Session  a chat session as GET /chat/sessions/{id} returns it
 * @property {string} id
 * @property {string} [user_id]  its owner
 * @property {"owner" | "member" | "viewer"} [role]  mine in it
 * @property {string | null} title
 * @property {boolean} is_archived
 * @property {number} message_count
 * @property {string} created_at
 * @property {string | null} [last_message_at]
 * @property {{auto_tts?: boolean} & {[key: string]: unknown}} [speech_config]
 */

const TOKEN_KEY = "parley.token";
const EXPIRES_KEY = "parley.expires_at";
const USER_KEY = "parley.user";

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {unknown} [details] */
  constructor(status, code, message, details) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** The stored login: `{token, user, expiresAt}` or null. */
export function storedAuth() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return null;
  const expiresAt = Number(sessionStorage.getItem(EXPIRES_KEY) || 0);
  let user = null;
  try {
    user = JSON.parse(sessionStorage.getItem(USER_KEY) || "null");
  } catch {
    user = null;
  }
  return { token, user, expiresAt };
}

/** @param {{access_token: string, expires_in: number, user: User}} reply */
export function storeAuth(reply) {
  sessionStorage.setItem(TOKEN_KEY, reply.access_token);
  sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + reply.expires_in * 1000));
  sessionStorage.setItem(USER_KEY, JSON.stringify(reply.user));
}

export function clearAuth() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  sessionStorage.removeItem(USER_KEY);
}

/** Called with the error whenever the server says the token is no longer valid. */
/** @type {(error: ApiError) => void} */
let onUnauthorized = () => {};
/** @param {(error: ApiError) => void} handler */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** @param {unknown} details */
function describe(details) {
  if (!Array.isArray(details) || !details.length) return "";
  return details.map((/** @type {{loc?: string[], msg: string}} */ d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
}

/**
 * @param {string} method @param {string} path
 * @param {{body?: unknown, form?: FormData, query?: Record<string, any>, auth?: boolean}} [options]
 * @returns {Promise<any>}
 */
async function request(method, path, { body, form, query, auth = true } = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  const stored = storedAuth();
  if (auth && stored) headers.Authorization = `Bearer ${stored.token}`;
  let payload;
  if (form) {
    payload = form;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let url = `/api/v1${path}`;
  if (query) url += `?${new URLSearchParams(query)}`;
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, "network_error", "The server cannot be reached. Check your connection.");
  }
  if (response.status === 204) return null;
  const isJson = (response.headers.get("Content-Type") || "").includes("application/json");
  const data = isJson ? await response.json() : await response.text();
  if (!response.ok) {
    const error = (isJson && data?.error) || {};
    const details = describe(error.details);
    const err = new ApiError(
      response.status,
      error.code || "http_error",
      details ? `${error.message}: ${details}` : error.message || `HTTP ${response.status}`,
      error.details,
    );
    if (response.status === 401 && auth && (error.code === "unauthorized" || error.code === "auth_revoked")) {
      onUnauthorized(err);
    }
    throw err;
  }
  return data;
}

/**
 * POST a form with upload progress (fetch cannot report upload progress; XHR can).
 * @param {string} path @param {FormData} form @param {(fraction: number) => void} [onProgress]
 * @returns {Promise<any>}
 */
function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1${path}`);
    const stored = storedAuth();
    if (stored) xhr.setRequestHeader("Authorization", `Bearer ${stored.token}`);
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "The upload failed: the server cannot be reached."));
    xhr.onload = () => {
      const data = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) return resolve(data);
      const error = data?.error || {};
      const err = new ApiError(xhr.status, error.code || "http_error", error.message || `HTTP ${xhr.status}`);
      if (xhr.status === 401) onUnauthorized(err);
      reject(err);
    };
    xhr.send(form);
  });
}

export const api = {
  /** @param {{username: string, password: string, email?: string}} fields */
  register: (fields) => request("POST", "/users/register", { body: fields, auth: false }),
  /** @param {string} username @param {string} password */
  login: (username, password) => request("POST", "/users/login", { body: { username, password }, auth: false }),
  me: () => request("GET", "/users/me"),
  logout: () => request("POST", "/users/logout"),

  listSessions: (archived = false) => request("GET", "/chat/sessions", { query: { archived, limit: 200 } }),
  /** @param {object} [fields] */
  createSession: (fields = {}) => request("POST", "/chat/sessions", { body: fields }),
  /** @param {string} id */
  getSession: (id) => request("GET", `/chat/sessions/${id}`),
  /** @param {string} id @param {object} fields */
  updateSession: (id, fields) => request("PUT", `/chat/sessions/${id}`, { body: fields }),
  /** @param {string} id */
  archiveSession: (id) => request("DELETE", `/chat/sessions/${id}`),
  /** The owner, then the members. @param {string} id */
  members: (id) => request("GET", `/chat/sessions/${id}/members`),
  /** @param {string} id @param {string} username @param {string} role */
  addMember: (id, username, role) => request("POST", `/chat/sessions/${id}/members`, { body: { username, role } }),
  /** @param {string} id @param {string} userId */
  removeMember: (id, userId) => request("DELETE", `/chat/sessions/${id}/members/${userId}`),

  /** The newest `limit` messages of a session, oldest first. @param {string} sessionId @param {number} [limit] */
  async history(sessionId, limit = 200) {
    const path = `/chat/sessions/${sessionId}/messages`;
    const first = await request("GET", path, { query: { limit } });
    if (first.total <= first.items.length) return first.items;
    return (await request("GET", path, { query: { limit, offset: first.total - limit } })).items;
  },
  /** @param {string} messageId */
  ragContext: (messageId) => request("GET", `/chat/messages/${messageId}/rag-context`),

  listDocuments: () => request("GET", "/documents", { query: { limit: 200 } }),
  /** @param {string} id */
  deleteDocument: (id) => request("DELETE", `/documents/${id}`),
  /**
   * Upload a document with progress.
   * @param {File} file @param {(fraction: number) => void} [onProgress]
   * @returns {Promise<any>}
   */
  uploadDocument(file, onProgress) {
    const form = new FormData();
    form.append("file", file, file.name);
    return upload("/documents", form, onProgress);
  },
  /**
   * Post a message with an attachment (multipart `file`, `content`, `client_id`), with upload progress: 201 with
   * the message (`content_type` image or file, and its `attachment`); the answer then streams over the socket.
   * @param {string} sessionId @param {File} file @param {string} content @param {string} clientId
   * @param {(fraction: number) => void} [onProgress]
   * @returns {Promise<any>}
   */
  sendAttachment(sessionId, file, content, clientId, onProgress) {
    const form = new FormData();
    form.append("content", content);
    form.append("client_id", clientId);
    form.append("file", file, file.name);
    return upload(`/chat/sessions/${sessionId}/messages`, form, onProgress);
  },

  /** @param {string} messageId */
  tts: (messageId) => request("POST", `/chat/messages/${messageId}/tts`),
  speechStatus: () => request("GET", "/speech/status"),
};

/** A URL for <audio src> or <img src>: audio and attachment GETs accept the token as a query parameter. @param {string} path */
export function audioUrl(path) {
  const stored = storedAuth();
  const separator = path.includes("?") ? "&" : "?";
  return stored ? `${path}${separator}token=${encodeURIComponent(stored.token)}` : path;
}
