/**
 * CRM conversions as Google Analytics 4 Measurement Protocol events (issue #25 §3, optional per portal), decided
 * without I/O: who the visitor is (the `_ga` client id), which conversions are sent and which are not (and why), and
 * the request bodies. Facts: `../shared/reference/FACTS-loop.md` §4 and the excerpts it cites,
 * `loop-docs/analytics__devguides__collection__protocol__ga4.EXCERPTS.txt` (cited "l.<line>" below).
 *
 * Trade-off accepted: the Measurement Protocol has no de-duplication (§4 "Idempotency: none documented — a re-sent
 * event is a second event"; §6 "GA4 MP … no dedup"), and the excerpts suggest no dedup field. So a retry after an
 * answered send is a second conversion in GA4: the caller keeps its own journal of sent conversion keys and sends
 * each key once. Each event carries its key as `conversion_key` only so that a duplicate can be told apart in an
 * export; GA4 itself does nothing with it.
 */
import * as z from "zod";
import { type Conversion, type ConversionGoal, conversionKey } from "./offline-conversions";

const HOUR_MS = 3_600_000;
/**
 * l.84: for "Export events to advertising platforms" `timestamp_micros` must be ≥ request time − 72 hours and ≤ request
 * time (without it the event takes the request's time, l.26-27, and would be misdated).
 */
export const GA4_BACKDATE_WINDOW_MS = 72 * HOUR_MS;
/**
 * The 72 hours are counted at the request, which comes a little after the plan (a queue hop, a slow answer): a
 * conversion within this margin of the edge is counted too old rather than sent to be refused. Plan right before
 * sending; a retried send is planned again.
 */
export const GA4_SEND_MARGIN_MS = 10 * 60_000;
/**
 * 25 events a request: the sending-events page's "Limitations" ("Requests can have a maximum of 25 events", a stored
 * copy on developers.google.cn; the excerpts lack that section, l.7-8, and §4 quotes a client library).
 */
export const GA4_MAX_EVENTS_PER_REQUEST = 25;

/** Event-name rules: l.90 (≤ 40 characters), l.67 (starts with a letter); letters, digits and `_` only (see below). */
const EVENT_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/**
 * Names GA4 keeps for itself. Only `session_start` is in the excerpts (l.45); the rest come from Google pages not
 * stored there: the support page "Event naming rules" (answer/13316687, web names, which GA4 also collects by itself:
 * a `form_submit` of ours would be counted with enhanced measurement's) and the MP reference's list (app names).
 * Refusing a few names too many costs nothing; a reserved one would be dropped silently (l.53).
 */
const RESERVED_EVENT_NAMES = new Set([
  "ad_activeview",
  "ad_click",
  "ad_exposure",
  "ad_impression",
  "ad_query",
  "ad_reward",
  "adunit_exposure",
  "app_background",
  "app_clear_data",
  "app_exception",
  "app_install",
  "app_remove",
  "app_store_refund",
  "app_store_subscription_cancel",
  "app_store_subscription_convert",
  "app_store_subscription_renew",
  "app_update",
  "app_upgrade",
  "click",
  "dynamic_link_app_open",
  "dynamic_link_app_update",
  "dynamic_link_first_open",
  "error",
  "file_download",
  "first_open",
  "first_visit",
  "form_start",
  "form_submit",
  "in_app_purchase",
  "notification_dismiss",
  "notification_foreground",
  "notification_open",
  "notification_receive",
  "os_update",
  "page_view",
  "screen_view",
  "scroll",
  "session_start",
  "session_start_with_rollout",
  "user_engagement",
  "video_complete",
  "video_progress",
  "video_start",
  "view_search_results",
]);
/** Reserved prefixes (MP reference; `_` is already refused by the first-letter rule of l.67). */
const RESERVED_PREFIXES = ["firebase_", "ga_", "google_", "gtag."];

/**
 * A portal's GA4 event name for a CRM moment (e.g. `crm_qualified`, `crm_won`). Letters are ASCII only: the MP's own
 * limits say "alpha-numeric" while GA's UI allows other scripts; the narrower rule holds for both.
 */
export const ga4EventNameSchema = z
  .string()
  .trim()
  .min(1, "An event name is required")
  .max(40, "An event name has at most 40 characters")
  .refine((s) => EVENT_NAME.test(s), "An event name starts with a Latin letter and has Latin letters, digits and _ only")
  .refine((s) => !RESERVED_EVENT_NAMES.has(s.toLowerCase()) && !RESERVED_PREFIXES.some((p) => s.toLowerCase().startsWith(p)), "This event name is reserved by Google Analytics");

/** A parameter value as the MP body takes it (l.35-41). */
export type Ga4ParamValue = string | number;

export interface Ga4Event {
  name: string;
  params: Record<string, Ga4ParamValue>;
}

/** The JSON body of `/mp/collect` for a web stream (l.22-30): one client, its events, and their time. */
export interface Ga4Payload {
  client_id: string;
  /** Unix epoch microseconds for every event of the request (l.26-27). */
  timestamp_micros?: number;
  events: Ga4Event[];
}

export type Ga4SkipReason = "no_client_id" | "too_old" | "goal_off";

export interface Ga4Plan {
  payloads: Ga4Payload[];
  /** `keys[i]`: the conversion keys in `payloads[i]`, in its events' order, for the caller's journal. */
  keys: string[][];
  skipped: { key: string; reason: Ga4SkipReason }[];
}

// `_ga` is `GA1.<n>.<random>.<timestamp>` and the client id is its last two parts (§4, a community convention
// [UNCERTAIN] as a contract: l.23 says to ask gtag('get')). Both parts are decimal numbers.
const GA_COOKIE = /^GA\d+\.\d+\.(\d{1,20}\.\d{1,20})$/;
const BARE_CLIENT_ID = /^\d{1,20}\.\d{1,20}$/;

/**
 * The GA4 client id of a `_ga` cookie ("GA1.1.123456789.1700000000" → "123456789.1700000000"), or of an id already
 * taken out of one (the form route stores it so); null for anything else, such as another cookie's value.
 */
export function ga4ClientIdOf(gaCookie: string | null): string | null {
  const value = gaCookie?.trim();
  if (!value) return null;
  if (BARE_CLIENT_ID.test(value)) return value;
  return GA_COOKIE.exec(value)?.[1] ?? null;
}

/** Revenue as `value` + `currency` (ISO 4217, as Metrica's CSV takes it), to the cent; nothing when unusable. */
function revenueParams(revenue: Conversion["revenue"]): Record<string, Ga4ParamValue> {
  if (!revenue || !Number.isFinite(revenue.amount) || revenue.amount < 0) return {};
  const currency = revenue.currency.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency)) return {};
  return { value: Math.round(revenue.amount * 100) / 100, currency };
}

/**
 * The requests to send now. A conversion is sent under its portal's event name (none: `goal_off`), for the client
 * id of its visitor (none usable: `no_client_id`), dated when it happened (never later than `now`, l.84), and not at
 * all when that is more than 72 hours before `now`, less the send margin (`too_old`, l.84). A "won" carries `value`
 * and `currency`. One client id a request (the body has one, l.22-23) and one `timestamp_micros` a request: the
 * excerpts document it only for the whole request (l.26-27), so events of one client at different times go apart.
 * At most 25 events a request. Duplicates of one key in the input yield one event.
 */
export function ga4PayloadsOf(conversions: { conversion: Conversion; clientId: string | null }[], names: Record<ConversionGoal, string | null>, now: number): Ga4Plan {
  const plan: Ga4Plan = { payloads: [], keys: [], skipped: [] };
  const seen = new Set<string>();
  const open = new Map<string, number>();
  for (const { conversion, clientId } of conversions) {
    const key = conversionKey(conversion);
    if (seen.has(key)) continue;
    seen.add(key);
    // A name the settings would refuse is no name at all: GA4 would drop the event without a word (l.88-89).
    const name = ga4EventNameSchema.safeParse(names[conversion.goal]).data;
    if (!name) {
      plan.skipped.push({ key, reason: "goal_off" });
      continue;
    }
    const client = ga4ClientIdOf(clientId);
    if (!client) {
      plan.skipped.push({ key, reason: "no_client_id" });
      continue;
    }
    const at = Math.floor(Math.min(conversion.at, now));
    // Written so that a time that is no number counts as too old rather than being sent as NaN.
    if (!(at >= now - GA4_BACKDATE_WINDOW_MS + GA4_SEND_MARGIN_MS)) {
      plan.skipped.push({ key, reason: "too_old" });
      continue;
    }
    const event: Ga4Event = { name, params: { conversion_key: key, ...(conversion.goal === "won" ? revenueParams(conversion.revenue) : {}) } };
    const group = `${client} ${at}`;
    let index = open.get(group) ?? -1;
    if ((plan.payloads[index]?.events.length ?? GA4_MAX_EVENTS_PER_REQUEST) >= GA4_MAX_EVENTS_PER_REQUEST) {
      index = plan.payloads.push({ client_id: client, timestamp_micros: at * 1000, events: [] }) - 1;
      plan.keys.push([]);
      open.set(group, index);
    }
    plan.payloads[index]?.events.push(event);
    plan.keys[index]?.push(key);
  }
  return plan;
}

/** A client id of the `_ga` form that a browser is all but sure never to have (a random part of 0). */
const SAMPLE_CLIENT_ID = "0.1700000000";

/**
 * A request shaped like the ones `ga4PayloadsOf` makes for these names, to check a portal's setting on the
 * validation server (l.53-58) before anything is sent: a qualified lead and a won deal with revenue, happening `now`.
 */
export function ga4SamplePayload(names: Record<ConversionGoal, string | null>, now: number): Ga4Payload {
  const sample = (goal: ConversionGoal, revenue: Conversion["revenue"]): { conversion: Conversion; clientId: string } => ({
    conversion: { goal, entity: { type: "deal", id: "0" }, at: now, revenue },
    clientId: SAMPLE_CLIENT_ID,
  });
  const plan = ga4PayloadsOf([sample("qualified", null), sample("won", { amount: 1000, currency: "RUB" })], names, now);
  return plan.payloads[0] ?? { client_id: SAMPLE_CLIENT_ID, timestamp_micros: now * 1000, events: [] };
}
