/**
 * Whether a call's recording link answers with a recording, asked before Bitrix24 is told to fetch it.
 * `telephony.externalCall.attachRecord` downloads RECORD_URL inside the REST request, in one attempt, and keeps
 * whatever comes back under the FILENAME we give (`….mp3`) (bitrix24/FACTS-portals.md §7): a link that needs a
 * CoMagic cabinet session would become a "recording" that is a login page. Whether CoMagic's media links need
 * one, and which content type they carry, no source says (comagic/FACTS-calls.md §9.5, FACTS-portals §13.4).
 */

export type RecordingCheck =
  /** The host answers with audio (or a generic download): attach it. */
  | { verdict: "audio" }
  /** A definite answer that is no recording (a login page, 404, 403): finish the call without one. */
  | { verdict: "not-audio"; reason: string }
  /** No answer from the worker's network (DNS, refused connection): Bitrix24 fetches from its own, so it decides. */
  | { verdict: "unreachable"; reason: string }
  /** A slow or failing host (timeout, 5xx, 429): ask again later rather than spend Bitrix24's 60 s on it. */
  | { verdict: "retry"; reason: string };

/**
 * Headers should come at once from a file host; one that takes longer than this would also spend much of the
 * 60 s Bitrix24 allows a REST request (bitrix24/FACTS.md §4.1) on its download.
 */
export const RECORDING_CHECK_TIMEOUT_MS = 10_000;

/**
 * audio/* is a recording; so is a generic download type, which file hosts send for files they do not
 * classify. A page (text/html, JSON, …) is not. No type at all says nothing: Bitrix24 stores the bytes as given.
 */
function judge(response: Response): RecordingCheck {
  const type = (response.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (type === "" || type.startsWith("audio/") || type === "application/octet-stream" || type === "binary/octet-stream") return { verdict: "audio" };
  return { verdict: "not-audio", reason: `answers ${type}, not audio (a login page?)` };
}

const isTimeout = (error: unknown) => error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * HEAD first; a host that refuses it (405 or 501, or a link signed for GET only) is asked for its first byte
 * with a ranged GET, whose body is dropped unread. Redirects are followed, as a login redirect ends on the page.
 */
export async function checkRecordingLink(url: string, deps: { fetch?: typeof fetch; timeoutMs?: number } = {}): Promise<RecordingCheck> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { verdict: "not-audio", reason: "not a link" };
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return { verdict: "not-audio", reason: `a ${parsed.protocol} link, not http(s)` };
  const doFetch = deps.fetch ?? fetch;
  const timeoutMs = deps.timeoutMs ?? RECORDING_CHECK_TIMEOUT_MS;
  const ask = (method: "HEAD" | "GET") => doFetch(parsed.href, { method, redirect: "follow", headers: method === "GET" ? { range: "bytes=0-0" } : {}, signal: AbortSignal.timeout(timeoutMs) });
  try {
    const head = await ask("HEAD");
    if (head.ok) return judge(head);
    const get = await ask("GET");
    await get.body?.cancel().catch(() => {});
    if (get.ok) return judge(get);
    if (retryable(get.status)) return { verdict: "retry", reason: `the recording host answered HTTP ${get.status}` };
    return { verdict: "not-audio", reason: `answers HTTP ${get.status}` };
  } catch (error) {
    if (isTimeout(error)) return { verdict: "retry", reason: `the recording host sent no answer in ${Math.round(timeoutMs / 1000)} s` };
    return { verdict: "unreachable", reason: `no connection to ${parsed.host}` };
  }
}
