/**
 * A stand-in for Google Analytics 4's Measurement Protocol (issue #25 §3) with the unkind parts of
 * `../shared/reference/FACTS-loop.md` §4 and §6 "GA4 MP", after
 * `loop-docs/analytics__devguides__collection__protocol__ga4.EXCERPTS.txt` (cited "l.<line>"):
 *
 * - `POST /mp/collect?measurement_id=&api_secret=` answers 204 to anything (l.53: "does not return HTTP error codes,
 *   even if an event is malformed or missing required parameters"; 204 No Content is what clients see). What it
 *   keeps is visible only to the control API: events of a registered (measurement_id, api_secret) pair that pass the
 *   rules below. An unknown pair, unreadable JSON or a request-level fault drops the whole request; a bad event drops
 *   that event; a parameter over a limit drops that parameter (l.88-89: GA "doesn't log events, event parameters, and
 *   user properties that exceed the following limits … doesn't process the 26th").
 * - `POST /debug/mp/collect` takes the same request (l.56-59) and answers 200 `{"validationMessages":[{fieldPath,
 *   description, validationCode}]}` (l.62-74), empty when clean; it records nothing (the validating-events page:
 *   events sent there "are not processed"). It does NOT check the pair: that page says "The validation server does not
 *   validate api_secret or firebase_app_id" (outside the excerpts; FACTS-loop §4 does not say it either way), so a
 *   wrong secret passes here and is dropped by /mp/collect, as in life.
 *
 * Rules, each with its code (which code a real server gives for each is documented only for l.67's example; the
 * others are this sandbox's choice from l.73-74's list):
 * - request: not a JSON object → VALUE_INVALID; no `client_id` (l.22-23) → VALUE_REQUIRED; no events → VALUE_REQUIRED;
 *   more than 25 events (sending-events "Limitations", not in the excerpts, l.7-8) → EXCEEDED_MAX_ENTITIES;
 *   `timestamp_micros` not an integer → VALUE_INVALID, before request time − 72 h or after request time (l.84, l.46)
 *   → VALUE_OUT_OF_BOUNDS; `user_id` over 256 characters (l.95) → VALUE_OUT_OF_BOUNDS (only the user_id is dropped).
 * - event name: missing → VALUE_REQUIRED; not starting with a letter (l.67) or other than letters, digits and `_`
 *   (sending-events "Limitations") or over 40 characters (l.89-90) → NAME_INVALID; reserved (l.45 `session_start`,
 *   a few app names and the prefixes `firebase_`, `ga_`, `google_`, `gtag.`) → NAME_RESERVED.
 * - parameters: more than 25 (l.91) → EXCEEDED_MAX_ENTITIES, the first 25 kept; a name over 40 (l.92) or not of
 *   letters, digits and `_` → NAME_INVALID; a reserved prefix → NAME_RESERVED; a text value over 100 characters (l.93,
 *   with its three exceptions) → VALUE_OUT_OF_BOUNDS; a value that is not text, number or boolean (`items` aside) →
 *   VALUE_INVALID; a `currency` that is not three capital letters → VALUE_INVALID (ISO 4217, as GA's ecommerce wants).
 * - user properties (l.94): more than 25 → EXCEEDED_MAX_ENTITIES, name over 24 → NAME_INVALID, value over 36 →
 *   VALUE_OUT_OF_BOUNDS. The sandbox checks but does not keep them.
 * No de-duplication: the same request twice is kept twice (§4 Idempotency, §6).
 *
 * Control API (`/_sandbox/ga4/…`): `GET events` (what was kept, per measurement id, and why the rest was dropped),
 * `POST reset` (forget events, drops, injected failures and registered pairs but the built-in one), `POST secrets
 * {"measurementId","apiSecret"}` (register a pair), `POST fail {"times"?, "status"?}` (the next calls to either
 * endpoint answer 503 or the given 5xx/429: an outage, which no excerpt describes but every service has).
 */
import { type Context, Hono } from "hono";
import type { StatusCode } from "hono/utils/http-status";

/** The built-in web stream: its measurement id and one Measurement Protocol API secret (l.18-21). */
export const SANDBOX_GA4 = { measurementId: "G-SANDBOX000", apiSecret: "sandbox-ga4-secret" } as const;

const HOUR_MICROS = 3_600_000_000;
// l.84: timestamp_micros ≥ request time − 72 hours and ≤ request time.
const BACKDATE_MICROS = 72 * HOUR_MICROS;
// Sending-events "Limitations" (stored copy on developers.google.cn): 25 events a request.
const MAX_EVENTS = 25;
// l.90-95: the collection limits.
const MAX_NAME = 40;
const MAX_PARAMS = 25;
const MAX_VALUE = 100;
const LONGER_VALUES: Record<string, number> = { page_title: 300, page_referrer: 420, page_location: 1000 };
const MAX_USER_PROPERTIES = 25;
const MAX_USER_PROPERTY_NAME = 24;
const MAX_USER_PROPERTY_VALUE = 36;
const MAX_USER_ID = 256;
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/**
 * l.45 names session_start; the others are the examples a copy of the MP reference gives ("ad_click, app_exception,
 * error, session_start, etc.") and names GA4 collects by itself (first_visit, first_open, user_engagement).
 */
const RESERVED_NAMES = new Set(["session_start", "ad_click", "app_exception", "error", "first_visit", "first_open", "user_engagement"]);
const RESERVED_PREFIXES = ["firebase_", "ga_", "google_", "gtag."];

type ValidationCode = "VALUE_INVALID" | "VALUE_REQUIRED" | "NAME_INVALID" | "NAME_RESERVED" | "VALUE_OUT_OF_BOUNDS" | "EXCEEDED_MAX_ENTITIES" | "NAME_DUPLICATED";

interface ValidationMessage {
  fieldPath: string;
  description: string;
  validationCode: ValidationCode;
}

type ParamValue = string | number | boolean | unknown[];

/** One kept event, as the control API shows it. */
export interface Ga4SandboxEvent {
  clientId: string;
  userId: string | null;
  /** The request's timestamp_micros, or the time of the request when it had none (l.26-27). */
  timestampMicros: number;
  name: string;
  params: Record<string, ParamValue>;
  receivedAt: string;
}

/** What the rules make of a request: the messages, and what /mp/collect keeps (null: the whole request is dropped). */
interface Inspection {
  messages: ValidationMessage[];
  kept: { clientId: string; userId: string | null; timestampMicros: number; events: { name: string; params: Record<string, ParamValue> }[] } | null;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const reserved = (name: string) => RESERVED_PREFIXES.some((prefix) => name.toLowerCase().startsWith(prefix));

function microsOf(value: unknown): number | null {
  // int64 in JSON may come as a number or as a string of digits.
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === "string" && /^\d{1,17}$/.test(value)) return Number(value);
  return null;
}

/** Why an event is refused (l.67, l.89-90, l.45), or null. */
function eventFault(event: unknown, at: string): [ValidationCode, string] | null {
  if (!isObject(event)) return ["VALUE_INVALID", `${at} is not an object.`];
  const name = event.name;
  if (typeof name !== "string" || name === "") return ["VALUE_REQUIRED", `${at} has no name.`];
  // l.67, word for word.
  if (!/^[A-Za-z]/.test(name)) return ["NAME_INVALID", `${at} has invalid name [${name}]. Names must start with an alphabetic character.`];
  if (!NAME.test(name)) return ["NAME_INVALID", `${at} has invalid name [${name}]. Only alphanumeric characters and underscores are allowed.`];
  if (name.length > MAX_NAME) return ["NAME_INVALID", `${at} has invalid name [${name}]. Names must be ${MAX_NAME} characters or fewer.`];
  if (RESERVED_NAMES.has(name) || reserved(name)) return ["NAME_RESERVED", `${at} has name [${name}] which is reserved.`];
  if (event.params !== undefined && !isObject(event.params)) return ["VALUE_INVALID", `${at} has params that are not an object.`];
  return null;
}

function inspect(body: unknown, nowMicros: number): Inspection {
  const messages: ValidationMessage[] = [];
  const say = (fieldPath: string, validationCode: ValidationCode, description: string) => messages.push({ fieldPath, description, validationCode });
  if (!isObject(body)) {
    say("", "VALUE_INVALID", "The request body is not a JSON object.");
    return { messages, kept: null };
  }
  let fatal = false;
  const stop = (fieldPath: string, validationCode: ValidationCode, description: string) => {
    say(fieldPath, validationCode, description);
    fatal = true;
  };

  const clientId = typeof body.client_id === "string" ? body.client_id.trim() : "";
  if (body.client_id === undefined || body.client_id === null || body.client_id === "") stop("client_id", "VALUE_REQUIRED", "Measurement requires a client_id.");
  else if (!clientId) stop("client_id", "VALUE_INVALID", "client_id must be a non-empty string.");

  let userId: string | null = null;
  if (body.user_id !== undefined && body.user_id !== null) {
    if (typeof body.user_id !== "string") say("user_id", "VALUE_INVALID", "user_id must be a string.");
    else if (body.user_id.length > MAX_USER_ID) say("user_id", "VALUE_OUT_OF_BOUNDS", `user_id has more than ${MAX_USER_ID} characters.`);
    else userId = body.user_id;
  }

  let timestampMicros = nowMicros;
  if (body.timestamp_micros !== undefined && body.timestamp_micros !== null) {
    const micros = microsOf(body.timestamp_micros);
    if (micros === null) stop("timestamp_micros", "VALUE_INVALID", "timestamp_micros must be a Unix epoch time in microseconds.");
    else if (micros < nowMicros - BACKDATE_MICROS || micros > nowMicros)
      stop("timestamp_micros", "VALUE_OUT_OF_BOUNDS", "timestamp_micros must be at most 72 hours before the request time and not after it.");
    else timestampMicros = micros;
  }

  if (body.validation_behavior !== undefined && body.validation_behavior !== "RELAXED" && body.validation_behavior !== "ENFORCE_RECOMMENDATIONS") {
    say("validation_behavior", "VALUE_INVALID", "validation_behavior is RELAXED or ENFORCE_RECOMMENDATIONS.");
  }

  if (body.user_properties !== undefined) {
    if (!isObject(body.user_properties)) say("user_properties", "VALUE_INVALID", "user_properties must be an object.");
    else {
      const names = Object.keys(body.user_properties);
      if (names.length > MAX_USER_PROPERTIES) say("user_properties", "EXCEEDED_MAX_ENTITIES", `Measurement has more than ${MAX_USER_PROPERTIES} user properties.`);
      for (const name of names.slice(0, MAX_USER_PROPERTIES)) {
        const value = (body.user_properties[name] as { value?: unknown } | null)?.value;
        if (name.length > MAX_USER_PROPERTY_NAME || !NAME.test(name)) say("user_properties", "NAME_INVALID", `User property [${name}] has an invalid name.`);
        else if (typeof value === "string" && value.length > MAX_USER_PROPERTY_VALUE)
          say("user_properties", "VALUE_OUT_OF_BOUNDS", `User property [${name}] has a value over ${MAX_USER_PROPERTY_VALUE} characters.`);
      }
    }
  }

  const events = body.events;
  if (!Array.isArray(events) || events.length === 0) {
    stop("events", "VALUE_REQUIRED", "Measurement requires at least one event.");
    return { messages, kept: null };
  }
  if (events.length > MAX_EVENTS) stop("events", "EXCEEDED_MAX_ENTITIES", `Measurement has ${events.length} events; at most ${MAX_EVENTS} are allowed.`);

  const keptEvents: { name: string; params: Record<string, ParamValue> }[] = [];
  for (const [index, event] of events.slice(0, MAX_EVENTS).entries()) {
    const at = `Event at index: [${index}]`;
    const fault = eventFault(event, at);
    if (fault || !isObject(event) || typeof event.name !== "string") {
      // A faulty event is dropped alone.
      if (fault) say("events", ...fault);
      continue;
    }
    const name = event.name;

    const params: Record<string, ParamValue> = {};
    const entries = Object.entries(isObject(event.params) ? event.params : {});
    if (entries.length > MAX_PARAMS) say("events", "EXCEEDED_MAX_ENTITIES", `${at} has ${entries.length} parameters; at most ${MAX_PARAMS} are allowed.`);
    for (const [param, value] of entries.slice(0, MAX_PARAMS)) {
      const which = `${at} has parameter [${param}]`;
      if (param.length > MAX_NAME || !NAME.test(param)) say("events", "NAME_INVALID", `${which} with an invalid name.`);
      else if (reserved(param)) say("events", "NAME_RESERVED", `${which} with a reserved name.`);
      else if (typeof value === "string" && value.length > (LONGER_VALUES[param] ?? MAX_VALUE))
        say("events", "VALUE_OUT_OF_BOUNDS", `${which} longer than ${LONGER_VALUES[param] ?? MAX_VALUE} characters.`);
      else if (!(typeof value === "string" || (typeof value === "number" && Number.isFinite(value)) || typeof value === "boolean" || (param === "items" && Array.isArray(value))))
        say("events", "VALUE_INVALID", `${which} whose value is not a string, a number or a boolean.`);
      else if (param === "currency" && !(typeof value === "string" && /^[A-Z]{3}$/.test(value))) say("events", "VALUE_INVALID", `${which} which is not an ISO 4217 currency code.`);
      else params[param] = value as ParamValue;
    }
    keptEvents.push({ name, params });
  }
  return { messages, kept: fatal ? null : { clientId, userId, timestampMicros, events: keptEvents } };
}

export interface Ga4SandboxOptions {
  now?: () => number;
}

export function createGa4Sandbox(options: Ga4SandboxOptions = {}) {
  const now = options.now ?? Date.now;
  /** measurement id → its registered API secrets. */
  const secrets = new Map<string, Set<string>>();
  const register = (measurementId: string, apiSecret: string) => secrets.set(measurementId, (secrets.get(measurementId) ?? new Set()).add(apiSecret));
  register(SANDBOX_GA4.measurementId, SANDBOX_GA4.apiSecret);
  const events = new Map<string, Ga4SandboxEvent[]>();
  const dropped: { measurementId: string | null; reason: string }[] = [];
  let failures: { status: number; times: number } | null = null;

  const readBody = async (c: Context): Promise<unknown> => {
    try {
      // Parsed whatever the Content-Type says (l.15 asks for application/json; sendBeacon sends text/plain).
      return JSON.parse(await c.req.text());
    } catch {
      return undefined;
    }
  };
  const failing = (c: Context) => {
    if (!failures || failures.times <= 0) return null;
    failures.times -= 1;
    return c.body(null, failures.status as StatusCode);
  };

  const app = new Hono();

  app.post("/mp/collect", async (c) => {
    const outage = failing(c);
    if (outage) return outage;
    const measurementId = c.req.query("measurement_id") ?? null;
    const apiSecret = c.req.query("api_secret") ?? "";
    const body = await readBody(c);
    // Everything below ends in the same 204 (l.53): only the control API can tell what happened.
    if (!measurementId || !secrets.get(measurementId)?.has(apiSecret)) {
      dropped.push({ measurementId, reason: "unknown measurement_id/api_secret pair" });
      return c.body(null, 204);
    }
    const { messages, kept } = inspect(body, now() * 1000);
    for (const m of messages) dropped.push({ measurementId, reason: `${m.validationCode}: ${m.description}` });
    if (kept && kept.events.length > 0) {
      const list = events.get(measurementId) ?? [];
      const receivedAt = new Date(now()).toISOString();
      for (const event of kept.events) list.push({ clientId: kept.clientId, userId: kept.userId, timestampMicros: kept.timestampMicros, ...event, receivedAt });
      events.set(measurementId, list);
    }
    return c.body(null, 204);
  });

  app.post("/debug/mp/collect", async (c) => {
    const outage = failing(c);
    if (outage) return outage;
    const body = await readBody(c);
    return c.json({ validationMessages: inspect(body, now() * 1000).messages });
  });

  app.get("/_sandbox/ga4/events", (c) => c.json({ events: Object.fromEntries(events), dropped }));
  app.post("/_sandbox/ga4/reset", (c) => {
    events.clear();
    dropped.length = 0;
    failures = null;
    secrets.clear();
    register(SANDBOX_GA4.measurementId, SANDBOX_GA4.apiSecret);
    return c.body(null, 204);
  });
  app.post("/_sandbox/ga4/secrets", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { measurementId?: unknown; apiSecret?: unknown };
    if (typeof body.measurementId !== "string" || !/^G-[A-Z0-9]+$/.test(body.measurementId) || typeof body.apiSecret !== "string" || body.apiSecret === "") {
      return c.json({ error: 'Give {"measurementId":"G-XXXX","apiSecret":"…"}' }, 400);
    }
    register(body.measurementId, body.apiSecret);
    return c.json({ ok: true });
  });
  app.post("/_sandbox/ga4/fail", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { times?: unknown; status?: unknown };
    const status = body.status === 429 || (typeof body.status === "number" && body.status >= 500 && body.status <= 599) ? body.status : 503;
    const times = Number.isInteger(body.times) && (body.times as number) > 0 ? Math.min(body.times as number, 100) : 1;
    failures = { status, times };
    return c.json({ failing: times, status });
  });

  return { app };
}
