/**
 * ALLOWED_ORIGINS entries: exact origins (`https://shop.example.ru`, `http://localhost:3000`) or a
 * wildcard for subdomains (`https://*.example.ru`, which does not cover `https://example.ru` itself).
 */
export interface AllowedOrigins {
  allows(origin: string | null | undefined): boolean;
  /** No valid entry: no site may send forms. */
  isEmpty: boolean;
  invalid: string[];
}

export function parseAllowedOrigins(raw: string | undefined): AllowedOrigins {
  const exact = new Set<string>();
  const suffixes: { scheme: string; suffix: string }[] = [];
  const invalid: string[] = [];
  for (const entry of (raw ?? "")
    .split(",")
    .map((s) => s.trim().replace(/\/$/, ""))
    .filter(Boolean)) {
    const wildcard = /^(https?):\/\/\*\.([a-z0-9.-]+(?::\d+)?)$/i.exec(entry);
    if (wildcard) {
      suffixes.push({ scheme: `${wildcard[1]?.toLowerCase()}:`, suffix: `.${wildcard[2]?.toLowerCase()}` });
      continue;
    }
    try {
      const url = new URL(entry);
      if ((url.protocol === "http:" || url.protocol === "https:") && url.origin === entry.toLowerCase()) exact.add(url.origin);
      else invalid.push(entry);
    } catch {
      invalid.push(entry);
    }
  }
  return {
    invalid,
    isEmpty: exact.size === 0 && suffixes.length === 0,
    allows(origin) {
      if (!origin || origin === "null") return false;
      if (exact.has(origin.toLowerCase())) return true;
      try {
        const url = new URL(origin);
        return suffixes.some((s) => url.protocol === s.scheme && url.host.endsWith(s.suffix));
      } catch {
        return false;
      }
    },
  };
}
