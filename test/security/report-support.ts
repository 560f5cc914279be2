import { exports } from "cloudflare:workers";
import { signClaims } from "../../worker/bitrix-app/tab-token";
import { openReport, TAB_KEYS } from "../worker/app-support";

export { openReport };

/** Helpers for the attribution report's routes: open it as a user, post its forms, read and age its token. */

type Fetcher = (request: Request) => Promise<Response>;
const worker: Fetcher = (request) => exports.default.fetch(request);

/** The report token in a page: the filter form's hidden field. */
export const tokenOf = (html: string) => /name="token" value="([^"]+)"/.exec(html)?.[1] ?? "";

/** A report the user opened, and its token. */
export async function openedReport(userId: number, lang = "en", fetcher: Fetcher = worker): Promise<{ html: string; token: string }> {
  const res = await openReport(userId, lang, fetcher);
  if (res.status !== 200) throw new Error(`the report did not open for user ${userId}: ${res.status}`);
  const html = await res.text();
  return { html, token: tokenOf(html) };
}

/** What the page's filter form and CSV export post: form fields, the token among them. */
export function postReport(path: "/bitrix/report" | "/bitrix/report.csv", fields: Record<string, string>, fetcher: Fetcher = worker, query = "?LANG=en"): Promise<Response> {
  return fetcher(
    new Request(`http://worker.test${path}${query}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    }),
  );
}

/** The page's Refresh button. */
export function refreshReport(token: string, fetcher: Fetcher = worker): Promise<Response> {
  return fetcher(new Request("http://worker.test/bitrix/report/refresh?LANG=en", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) }));
}

export function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split(".")[1] ?? "";
  return JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
}

/** The same token as it would be `seconds` later: its access check that much older (signed with the worker's key). */
export function aged(token: string, seconds: number): Promise<string> {
  const claims = claimsOf(token);
  return signClaims({ ...claims, checkedAt: Number(claims.checkedAt ?? Math.floor(Date.now() / 1000)) - seconds }, TAB_KEYS);
}

/**
 * Waits for a fresh minute when little of this one is left: the rate limiters count in fixed wall-clock minutes
 * (as miniflare's does), so a burst that straddled two would see two budgets.
 */
export async function inFreshMinute(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 15_000) await new Promise((r) => setTimeout(r, left + 50));
}

/** Parses CSV text (quoted fields, doubled quotes) into rows of cells. */
export function parseCsv(text: string, separator: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === separator) {
      row.push(cell);
      cell = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += ch;
  }
  if (cell !== "" || row.length) rows.push([...row, cell]);
  return rows;
}
