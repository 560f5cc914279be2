/**
 * PHP `http_build_query` encoding, which Bitrix24 `batch` commands use: `fields[PHONE][0][VALUE]=%2B7…`.
 * null and undefined are left out (as PHP does), booleans become 1/0.
 */
export function encodeBitrixQuery(params: Record<string, unknown>): string {
  const pairs: string[] = [];
  const walk = (prefix: string, value: unknown): void => {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(`${prefix}[${i}]`, item);
    } else if (typeof value === "object") {
      for (const [key, item] of Object.entries(value)) walk(`${prefix}[${encodeURIComponent(key)}]`, item);
    } else {
      const scalar = typeof value === "boolean" ? (value ? "1" : "0") : String(value);
      pairs.push(`${prefix}=${encodeURIComponent(scalar)}`);
    }
  };
  for (const [key, value] of Object.entries(params)) walk(encodeURIComponent(key), value);
  return pairs.join("&");
}

/**
 * Bitrix24 replaces `$result[…]`, `$error[…]`, `$next[…]`, `$total[…]` and `$time[…]` inside every value of a
 * `batch` command (FACTS.md §2.11). None of the worker's commands uses them; in a client's name or a form's
 * message they would copy another command's result into the lead. So their `$` becomes `＄` (U+FF04).
 */
const BATCH_REFERENCE = /\$(?=\s*(?:result|error|next|total|time)\s*\[)/gi;

export function neutralizeBatchReferences(value: unknown): unknown {
  if (typeof value === "string") return value.replace(BATCH_REFERENCE, "\uFF04");
  if (Array.isArray(value)) return value.map(neutralizeBatchReferences);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, neutralizeBatchReferences(v)]));
  return value;
}
