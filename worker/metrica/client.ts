/**
 * The Yandex Metrica offline-conversions adapter (issue #25 §3): uploads a CSV of conversions to a counter and reads an
 * upload's status. Facts: `../shared/reference/FACTS-loop.md` §3 (cited "§3.x"). A 200 to an upload only means "file
 * received" (§3.3): the caller keeps the upload's id and reads its status until it is final (`isFinalStatus`).
 *
 * The OAuth token goes in the Authorization header only (§3.1) and never into an error message: errors carry
 * Metrica's error type and message, which do not echo it.
 */
import { ServiceError } from "../service-error";
import * as z from "zod";

export const METRICA_API_URL = "https://api-metrika.yandex.net";

// A slow answer is retried rather than awaited: Workers' subrequests should not hang a queue batch.
const DEFAULT_TIMEOUT_MS = 30_000;
// §3.6: 30 requests a second per IP and 3 parallel per user are lifted within a second.
const SHORT_QUOTA_RETRY_SECONDS = 2;
// §3.6 backend_error "Попробуйте позже": a minute spares a struggling API.
const BACKEND_RETRY_SECONDS = 60;

/**
 * A failed Metrica call. `transient`: the same call may succeed later (server errors, timeouts, quotas); permanent
 * ones need a person (a refused token, a counter without access) or different data (invalid_uploading).
 */
export class MetricaError extends ServiceError {
  // `type` is Metrica's `error_type` (§3.6), or `network` / `timeout` / `unexpected_answer`.
  override name = "MetricaError";
}

/** §3.3's statuses; another one, should Metrica add it, is kept as a string and read as not final. */
export const FINAL_STATUSES = ["PROCESSED", "LINKAGE_FAILURE"] as const;

const count = z.number().int().nonnegative();
const uploadingSchema = z
  .object({
    // int64 (§3.3): kept as text, as a JSON number past 2^53 would lose digits.
    id: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]).transform(String),
    create_time: z.string().nullish(),
    source_quantity: count.nullish(),
    line_quantity: count.nullish(),
    comment: z.string().nullish(),
    client_id_type: z.string().nullish(),
    status: z.string().min(1),
    // The newer answer (§3.3, EN page): absent on the older one.
    goal_not_found_quantity: count.nullish(),
    user_not_found_quantity: count.nullish(),
    linked_quantity: count.nullish(),
  })
  .loose();
const uploadingAnswer = z.object({ uploading: uploadingSchema }).loose();
const errorAnswer = z
  .object({ errors: z.array(z.object({ error_type: z.string(), message: z.string().nullish() }).loose()).nullish(), code: z.number().nullish(), message: z.string().nullish() })
  .loose();

/** An upload as Metrica reports it (§3.3). */
export interface MetricaUploading {
  id: string;
  status: string;
  createTime: string | null;
  /** Rows in the file, and rows that passed validation: fewer means rows were dropped (§3.3). */
  sourceQuantity: number | null;
  lineQuantity: number | null;
  goalNotFound: number | null;
  userNotFound: number | null;
  linked: number | null;
}

export function isFinalStatus(status: string): boolean {
  return (FINAL_STATUSES as readonly string[]).includes(status);
}

export interface MetricaClientOptions {
  token: string;
  baseUrl?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** For the retry time of a daily quota (reset at 00:00 GMT, §3.6). */
  now?: () => number;
}

export interface MetricaClient {
  /** Uploads one CSV file (§3.2); `comment` ≤ 255 digits and letters (§3.1). */
  uploadConversions(counterId: string, csv: string, options?: { comment?: string }): Promise<MetricaUploading>;
  uploadStatus(counterId: string, uploadId: string): Promise<MetricaUploading>;
}

function secondsToMidnightUtc(now: number): number {
  const next = new Date(now);
  next.setUTCHours(24, 0, 0, 0);
  return Math.max(1, Math.ceil((next.getTime() - now) / 1000));
}

/** Metrica's error answer as a MetricaError: transient for 5xx and quotas, permanent otherwise (§3.6). */
export function metricaErrorOf(status: number, body: unknown, now: number): MetricaError {
  const parsed = errorAnswer.safeParse(body);
  const first = parsed.success ? parsed.data.errors?.[0] : undefined;
  const type = first?.error_type ?? (status === 401 ? "unauthorized" : status >= 500 ? "backend_error" : `http_${status}`);
  const message = `Metrica ${type} (HTTP ${status}): ${first?.message ?? (parsed.success ? parsed.data.message : null) ?? "no message"}`;
  if (status === 429) {
    // §3.6: per-user and per-counter quotas are daily, reset at 00:00 GMT; the others pass within a second.
    const daily = type === "quota_requests_by_uid" || type === "quota_requests_by_counter_id";
    return new MetricaError(type, message, status, true, daily ? secondsToMidnightUtc(now) : SHORT_QUOTA_RETRY_SECONDS);
  }
  if (status >= 500) return new MetricaError(type, message, status, true, BACKEND_RETRY_SECONDS);
  // 401 / 403 (unauthorized, invalid_token, access_denied: §3.1 [CONFLICT] on which status), 400, 404, 409: a person
  // or other data fixes these, not a retry.
  return new MetricaError(type, message, status, false);
}

function toUploading(body: unknown): MetricaUploading {
  const parsed = uploadingAnswer.safeParse(body);
  if (!parsed.success) throw new MetricaError("unexpected_answer", "Metrica answered 200 without a readable uploading", 200, true, BACKEND_RETRY_SECONDS);
  const u = parsed.data.uploading;
  return {
    id: u.id,
    status: u.status,
    createTime: u.create_time ?? null,
    sourceQuantity: u.source_quantity ?? null,
    lineQuantity: u.line_quantity ?? null,
    goalNotFound: u.goal_not_found_quantity ?? null,
    userNotFound: u.user_not_found_quantity ?? null,
    linked: u.linked_quantity ?? null,
  };
}

/** A client for one OAuth token (scope `metrika:write` or `metrika:offline_data`, §3.1). */
export function metricaClient(options: MetricaClientOptions): MetricaClient {
  const base = (options.baseUrl ?? METRICA_API_URL).replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const counterPath = (counterId: string) => {
    // The counter id is a number (§3.1 integer<int32>): anything else would change the path.
    if (!/^\d{1,12}$/.test(counterId)) throw new MetricaError("invalid_parameter", "A Metrica counter id is a number", 0, false);
    return `${base}/management/v1/counter/${counterId}`;
  };

  async function call(url: string, init: RequestInit): Promise<MetricaUploading> {
    let res: Response;
    try {
      res = await doFetch(url, { ...init, headers: { authorization: `OAuth ${options.token}` }, signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS) });
    } catch (error) {
      const timeout = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      // The upload may have arrived: a retry re-sends the same rows, which only overwrite (§3.5).
      throw new MetricaError(timeout ? "timeout" : "network", `Metrica did not answer (${timeout ? "timeout" : "network error"})`, 0, true, BACKEND_RETRY_SECONDS);
    }
    const body: unknown = await res.json().catch(() => null);
    if (!res.ok) throw metricaErrorOf(res.status, body, now());
    return toUploading(body);
  }

  return {
    async uploadConversions(counterId, csv, uploadOptions = {}) {
      const url = new URL(`${counterPath(counterId)}/offline_conversions/upload`);
      if (uploadOptions.comment) url.searchParams.set("comment", uploadOptions.comment);
      const form = new FormData();
      // §3.1: multipart part `file`, a UTF-8 CSV (the docs' example names it data.csv, text/csv).
      form.append("file", new Blob([csv], { type: "text/csv" }), "data.csv");
      return call(url.toString(), { method: "POST", body: form });
    },
    async uploadStatus(counterId, uploadId) {
      if (!/^\d{1,20}$/.test(uploadId)) throw new MetricaError("invalid_parameter", "An upload id is a number", 0, false);
      return call(`${counterPath(counterId)}/offline_conversions/uploading/${uploadId}`, { method: "GET" });
    },
  };
}
