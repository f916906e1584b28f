// @ts-check
// "just now", "5 min ago", "3 h ago", "Mar 4": how long ago something happened (pure: node's test runner checks it).

/**
 * @param {string} iso  an ISO 8601 time
 * @param {number} [now]  milliseconds since the epoch
 */
export function relativeTime(iso, now = Date.now()) {
  if (!iso) return "";
  const then = new Date(iso);
  const seconds = (now - then.getTime()) / 1000;
  if (Number.isNaN(seconds)) return "";
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  if (seconds < 7 * 86400) return `${Math.round(seconds / 86400)} d ago`;
  return then.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}
