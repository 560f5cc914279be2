/**
 * The Google Analytics 4 Measurement Protocol adapter (issue #25 §3): checks a portal's setting on the validation
 * server and sends conversion events. Facts: `../shared/reference/FACTS-loop.md` §4 and
 * `loop-docs/analytics__devguides__collection__protocol__ga4.EXCERPTS.txt` (cited "l.<line>").
 *
 * `/mp/collect` answers 2xx to anything, malformed or not (l.53-55): a 2xx from `send` means "received", never
 * "valid" or "counted". Validity is checked once, when the setting is saved, on `/debug/mp/collect` (same request,
 * l.56-59), which answers `validationMessages`. What that check cannot see: Google says the validation server does
 * not check the api_secret (the validating-events page, outside the excerpts: "does not validate api_secret or
 * firebase_app_id"), and an unknown measurement id or secret makes `/mp/collect` drop the events in silence. A wrong
 * pair is found only in GA4's own reports (Realtime, DebugView).
 *
 * The api_secret travels in the query (l.17-18), so no URL is ever put in an error message or a log.
 */
import { ServiceError } from "../service-error";
import * as z from "zod";
import { type Ga4Payload, GA4_MAX_EVENTS_PER_REQUEST, ga4SamplePayload } from "../domain/ga4-events";

export const GA4_API_URL = "https://www.google-analytics.com";

// The endpoint answers at once with no body (l.53); a slow one is retried rather than awaited in a queue batch.
const DEFAULT_TIMEOUT_MS = 10_000;
// An outage is not over in seconds; a minute spares it, as for Metrica's backend_error.
const RETRY_SECONDS = 60;

/** l.20-21: the stream's Measurement ID (`G-…`), not its Stream ID. Pasted ids are trimmed and upper-cased. */
export const ga4MeasurementIdSchema = z
  .string()
  .trim()
  .toUpperCase()
  .regex(/^G-[A-Z0-9]{1,20}$/, "A measurement ID looks like G-XXXXXXXXXX (Admin → Data streams → the stream), not the stream's number");

/** l.18-19: made in GA's UI; its form is not documented, so only what cannot be a secret is refused. */
export const ga4ApiSecretSchema = z.string().trim().min(1, "An API secret is required").max(256, "An API secret has at most 256 characters").regex(/^\S+$/, "An API secret has no spaces");

/**
 * A failed Measurement Protocol call. `transient`: the same call may succeed later (network, timeout, 429, 5xx);
 * permanent ones need other data or settings. A `timeout` may still have delivered the events, and GA4 does not
 * de-duplicate (§4): the caller decides whether a retry (a possible second event) beats a loss.
 */
export class Ga4Error extends ServiceError {
  // `type`: `network`, `timeout`, `http_<status>`, `unexpected_answer`, `invalid_parameter` or `invalid_payload`.
  override name = "Ga4Error";
}

/** One message of the validation server (l.62-74). */
export interface Ga4ValidationMessage {
  fieldPath?: string;
  description: string;
  validationCode?: string;
}

export type Ga4Validation = { ok: true } | { ok: false; messages: Ga4ValidationMessage[] };

const validationAnswer = z
  .object({
    validationMessages: z
      .array(
        z
          .object({ fieldPath: z.string().nullish(), description: z.string().catch("No description"), validationCode: z.string().nullish() })
          .loose()
          .transform(
            (m): Ga4ValidationMessage => ({
              description: m.description,
              ...(m.fieldPath ? { fieldPath: m.fieldPath } : {}),
              ...(m.validationCode ? { validationCode: m.validationCode } : {}),
            }),
          ),
      )
      // A clean request may come back without the array at all.
      .default([]),
  })
  .loose();

export interface Ga4ClientOptions {
  measurementId: string;
  apiSecret: string;
  baseUrl?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** The time of the default sample's events. */
  now?: () => number;
}

export interface Ga4Client {
  /**
   * Sends `sample` (default: a qualified lead and a won deal under `crm_qualified` / `crm_won`) to the validation
   * server; its events are not processed there. `ok` says the request's shape is right, not that the pair is.
   */
  validate(sample?: Ga4Payload): Promise<Ga4Validation>;
  /** Sends one request to `/mp/collect`; resolves on any 2xx, which proves only that it arrived. */
  send(payload: Ga4Payload): Promise<void>;
}

function retryAfter(res: Response): number {
  const seconds = Number(res.headers.get("retry-after"));
  return Number.isInteger(seconds) && seconds > 0 ? Math.min(seconds, 3600) : RETRY_SECONDS;
}

/** A non-2xx answer as a Ga4Error: 429 and 5xx are transient, other statuses are not (l.53 says none are expected). */
export function ga4ErrorOf(res: Response): Ga4Error {
  const message = `Google Analytics answered HTTP ${res.status}`;
  if (res.status === 429 || res.status >= 500) return new Ga4Error(`http_${res.status}`, message, res.status, true, retryAfter(res));
  return new Ga4Error(`http_${res.status}`, message, res.status, false);
}

/** A client for one web stream (measurement ID + one of its Measurement Protocol API secrets, l.17-21). */
export function ga4Client(options: Ga4ClientOptions): Ga4Client {
  const measurementId = ga4MeasurementIdSchema.safeParse(options.measurementId);
  const apiSecret = ga4ApiSecretSchema.safeParse(options.apiSecret);
  if (!measurementId.success) throw new Ga4Error("invalid_parameter", measurementId.error.issues[0]?.message ?? "Invalid measurement ID", 0, false);
  // The secret's own value stays out of the message.
  if (!apiSecret.success) throw new Ga4Error("invalid_parameter", apiSecret.error.issues[0]?.message ?? "Invalid API secret", 0, false);
  const query = { measurement_id: measurementId.data, api_secret: apiSecret.data };
  const base = (options.baseUrl ?? GA4_API_URL).replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;

  async function post(path: "/mp/collect" | "/debug/mp/collect", body: unknown): Promise<Response> {
    const url = new URL(`${base}${path}`);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    try {
      return await doFetch(url.toString(), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
    } catch (error) {
      const timeout = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      throw new Ga4Error(timeout ? "timeout" : "network", `Google Analytics did not answer (${timeout ? "timeout" : "network error"})`, 0, true, RETRY_SECONDS);
    }
  }

  return {
    async validate(sample) {
      const payload = sample ?? ga4SamplePayload({ qualified: "crm_qualified", won: "crm_won" }, now());
      // l.60-61: strict checks on the validation server; never set on /mp/collect, where it would drop more data.
      const res = await post("/debug/mp/collect", { ...payload, validation_behavior: "ENFORCE_RECOMMENDATIONS" });
      if (!res.ok) throw ga4ErrorOf(res);
      const parsed = validationAnswer.safeParse(await res.json().catch(() => null));
      if (!parsed.success) throw new Ga4Error("unexpected_answer", "The validation server answered without validationMessages", res.status, true, RETRY_SECONDS);
      const messages = parsed.data.validationMessages;
      return messages.length === 0 ? { ok: true } : { ok: false, messages };
    },

    async send(payload) {
      // /mp/collect drops such a request without an error (l.53): refuse it here, where someone can hear.
      if (!payload.client_id) throw new Ga4Error("invalid_payload", "A Measurement Protocol request needs a client_id", 0, false);
      if (payload.events.length === 0 || payload.events.length > GA4_MAX_EVENTS_PER_REQUEST) {
        throw new Ga4Error("invalid_payload", `A Measurement Protocol request has 1 to ${GA4_MAX_EVENTS_PER_REQUEST} events, not ${payload.events.length}`, 0, false);
      }
      const res = await post("/mp/collect", payload);
      // The body (none, l.53) is read only to free the connection.
      await res.body?.cancel();
      if (!res.ok) throw ga4ErrorOf(res);
    },
  };
}
