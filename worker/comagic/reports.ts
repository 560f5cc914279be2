import * as z from "zod";
import type { CallRecord } from "../domain/call-record";
import { formatComagicDateTime, parseComagicDateTime } from "../domain/comagic-time";
import { journeyWindow, type ReportWindow } from "../domain/report-window";
import { buildJourney, type ContactTouch, type Journey, type SessionTouch } from "../domain/touchpoints";
import { CoMagicError, type CoMagicRpcClient } from "./data-api";

/** CoMagic allows at most 10,000 rows a page; 1,000 keeps each answer small. */
const PAGE_SIZE = 1000;
/**
 * Reads shared by many events (a batch's call records, its visitors' journeys) take CoMagic's largest page:
 * every read costs a point, however many rows it brings (data_api.txt:129, 562).
 */
const BATCH_PAGE_SIZE = 10_000;
/** The Data API refuses offsets above 100,000. */
const MAX_OFFSET = 100_000;
const UTM_FIELDS = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"] as const;

/** A report's id (CoMagic answers numbers; a string is taken too). */
export const id = z.union([z.string(), z.number()]).transform(String);
/** A report's text or number cell; empty is null. */
export const text = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === null || v === undefined || v === "" ? null : String(v)));
export const utmShape = Object.fromEntries(UTM_FIELDS.map((f) => [f, text])) as Record<(typeof UTM_FIELDS)[number], typeof text>;
export const toUtm = (r: Record<(typeof UTM_FIELDS)[number], string | null>) => ({ source: r.utm_source, medium: r.utm_medium, campaign: r.utm_campaign, content: r.utm_content, term: r.utm_term });

/**
 * Reads every page of a report. Fields are always named: CoMagic's defaults leave out visitor_id and UTMs.
 */
export async function fetchReport<T>(
  client: CoMagicRpcClient,
  method: string,
  fields: readonly string[],
  row: z.ZodType<T>,
  window: ReportWindow,
  filter?: unknown,
  extra: Record<string, unknown> = {},
  pageSize = PAGE_SIZE,
): Promise<T[]> {
  const rows: T[] = [];
  for (let offset = 0; offset <= MAX_OFFSET; offset += pageSize) {
    const { data, metadata } = await client.call(method, {
      date_from: formatComagicDateTime(window.from, window.timeZone),
      date_till: formatComagicDateTime(window.to, window.timeZone),
      fields,
      ...(filter === undefined ? {} : { filter }),
      ...extra,
      limit: pageSize,
      offset,
    });
    const page = z.array(row).safeParse(data);
    if (!page.success) throw new CoMagicError("unexpected_answer", `CoMagic Data API ${method}: rows not as expected`, true);
    rows.push(...page.data);
    const total = typeof metadata.total_items === "number" ? metadata.total_items : rows.length;
    if (page.data.length < pageSize || rows.length >= total) break;
  }
  return rows;
}

/*
 * `in` "Доступно не для всех методов" (data_api.txt:513), and no report page says which; an `or` tree of `=`
 * filters is documented for every get method (data_api.txt:303-420). So a read by ids tries `in` and, when
 * CoMagic refuses it (how is not said: invalid_parameter_value or filter_prohibited, data_api.txt:248, 250),
 * asks again with the tree; a refused request costs no point (data_api.txt:129). Methods
 * that refused are remembered for the isolate's life, a hint only: a new isolate asks with `in` once more.
 */
const REFUSED_IN = new Set(["invalid_parameter_value", "filter_prohibited"]);
const refusesIn = new Set<string>();

function anyOf(field: string, values: number[], tree: boolean): unknown {
  if (values.length === 1) return { field, operator: "=", value: values[0] };
  if (!tree) return { field, operator: "in", value: values };
  return { filters: values.map((value) => ({ field, operator: "=", value })), condition: "or" };
}

/** Every row whose `field` is one of `values`, in one read (a page per 10,000 rows) whatever their number. */
export async function fetchRowsAnyOf<T>(
  client: CoMagicRpcClient,
  method: string,
  fields: readonly string[],
  row: z.ZodType<T>,
  window: ReportWindow,
  field: string,
  values: readonly string[],
): Promise<T[]> {
  // CoMagic's ids are numbers: a value that is not one matches no row, so it is not asked for.
  const numbers = [...new Set(values)].map(Number).filter(Number.isSafeInteger);
  if (numbers.length === 0) return [];
  const read = (tree: boolean) => fetchReport(client, method, fields, row, window, anyOf(field, numbers, tree), {}, BATCH_PAGE_SIZE);
  if (numbers.length === 1 || refusesIn.has(method)) return read(true);
  try {
    return await read(false);
  } catch (error) {
    if (!(error instanceof CoMagicError) || !REFUSED_IN.has(error.mnemonic)) throw error;
    const rows = await read(true);
    refusesIn.add(method);
    return rows;
  }
}

const SESSION_FIELDS = ["id", "date_time", "visitor_id", "channel", "source_name", "referrer", "entrance_page", "campaign_id", "campaign_name", "site_id", ...UTM_FIELDS];
const sessionRow = z
  .object({ id, date_time: z.string(), visitor_id: text, channel: text, source_name: text, referrer: text, entrance_page: text, campaign_id: text, campaign_name: text, site_id: text, ...utmShape })
  .loose();

const COMMUNICATION_FIELDS = ["id", "communication_type", "date_time", "visitor_id", "visitor_session_id"];
const communicationRow = z.object({ id, communication_type: z.string(), date_time: z.string(), visitor_id: text, visitor_session_id: text }).loose();
const CONTACT_TYPES = new Set(["call", "chat", "offline_message", "goal"]);

function isoAt(text: string, timeZone: string): string {
  return (parseComagicDateTime(text, timeZone) ?? new Date(0)).toISOString();
}

function sessionTouch(s: z.infer<typeof sessionRow>, timeZone: string): SessionTouch {
  return {
    type: "session",
    at: isoAt(s.date_time, timeZone),
    sessionId: s.id,
    channel: s.channel,
    source: s.source_name,
    utm: toUtm(s),
    referrer: s.referrer,
    entrancePage: s.entrance_page,
    campaignId: s.campaign_id,
    campaignName: s.campaign_name,
    siteId: s.site_id,
  };
}

/**
 * The journeys of many visitors over the longest window CoMagic accepts, ending now, from two reads whatever
 * their number: one of visits, one of contacts (`visitor_id` in […]), each row given to the visitor it names.
 * Every visitor asked for has a journey, empty when CoMagic knows nothing of them.
 */
export async function loadJourneys(client: CoMagicRpcClient, visitorIds: readonly string[], now: Date, timeZone: string): Promise<Map<string, Journey>> {
  const ids = [...new Set(visitorIds)];
  if (ids.length === 0) return new Map();
  const touches = new Map<string, (SessionTouch | ContactTouch)[]>(ids.map((visitorId) => [visitorId, []]));
  const window = journeyWindow(now, timeZone);
  const sessions = await fetchRowsAnyOf(client, "get.visitor_sessions_report", SESSION_FIELDS, sessionRow, window, "visitor_id", ids);
  const contacts = await fetchRowsAnyOf(client, "get.communications_report", COMMUNICATION_FIELDS, communicationRow, window, "visitor_id", ids);
  for (const s of sessions) if (s.visitor_id) touches.get(s.visitor_id)?.push(sessionTouch(s, timeZone));
  for (const c of contacts) {
    if (!c.visitor_id || !CONTACT_TYPES.has(c.communication_type)) continue;
    touches.get(c.visitor_id)?.push({ type: c.communication_type as ContactTouch["type"], at: isoAt(c.date_time, timeZone), id: c.id, sessionId: c.visitor_session_id });
  }
  return new Map([...touches].map(([visitorId, found]) => [visitorId, buildJourney(visitorId, now, found)]));
}

/** One visitor's journey, for the CRM tab: the same two reads with `visitor_id` = the visitor. */
export async function loadJourney(client: CoMagicRpcClient, visitorId: string, now: Date, timeZone: string): Promise<Journey> {
  return (await loadJourneys(client, [visitorId], now, timeZone)).get(visitorId) ?? buildJourney(visitorId, now, []);
}

/**
 * What get.calls_report says of a call (FACTS-calls §1.2). Every field is named: most are not defaults.
 * The raw utm_* win over CoMagic's extended eq_utm_*, which fill in where the visit had none.
 */
const CALL_FIELDS = [
  "id",
  "communication_id",
  "start_time",
  "direction",
  "is_lost",
  "contact_phone_number",
  "total_duration",
  "talk_duration",
  "wait_duration",
  "visitor_id",
  "channel",
  "source_name",
  "site_domain_name",
  "entrance_page",
  "tags",
  "call_records",
  "full_record_file_link",
  "last_answered_employee_id",
  "last_answered_employee_full_name",
  "call_api_external_id",
  "campaign_id",
  ...UTM_FIELDS,
  ...UTM_FIELDS.map((f) => `eq_${f}`),
];
const seconds = z
  .union([z.number(), z.string()])
  .nullish()
  .transform((v) => (v === null || v === undefined || v === "" || Number.isNaN(Number(v)) ? null : Number(v)));
const eqUtmShape = Object.fromEntries(UTM_FIELDS.map((f) => [`eq_${f}`, text])) as Record<`eq_${(typeof UTM_FIELDS)[number]}`, typeof text>;
const callRow = z
  .object({
    id,
    communication_id: text,
    start_time: text,
    direction: text,
    is_lost: z.boolean().nullish(),
    contact_phone_number: text,
    total_duration: seconds,
    talk_duration: seconds,
    wait_duration: seconds,
    visitor_id: text,
    channel: text,
    source_name: text,
    site_domain_name: text,
    entrance_page: text,
    tags: z.array(z.object({ tag_name: z.string() }).loose()).nullish(),
    full_record_file_link: text,
    last_answered_employee_id: text,
    last_answered_employee_full_name: text,
    call_api_external_id: text,
    campaign_id: text,
    ...utmShape,
    ...eqUtmShape,
  })
  .loose()
  .transform(
    (r): CallRecord => ({
      kind: "call",
      id: r.id,
      direction: r.direction === "in" || r.direction === "out" ? r.direction : null,
      internal: null,
      lost: r.is_lost ?? null,
      totalSeconds: r.total_duration,
      talkSeconds: r.talk_duration,
      waitSeconds: r.wait_duration,
      phone: r.contact_phone_number,
      visitorId: r.visitor_id,
      utm: {
        source: r.utm_source ?? r.eq_utm_source,
        medium: r.utm_medium ?? r.eq_utm_medium,
        campaign: r.utm_campaign ?? r.eq_utm_campaign,
        content: r.utm_content ?? r.eq_utm_content,
        term: r.utm_term ?? r.eq_utm_term,
      },
      employee: r.last_answered_employee_full_name,
      employeeId: r.last_answered_employee_id,
      trafficType: r.channel,
      entryPage: r.entrance_page ?? r.site_domain_name,
      tags: (r.tags ?? []).map((t) => t.tag_name),
      recordingUrl: r.full_record_file_link,
      startedByWorker: r.call_api_external_id !== null,
      source: r.source_name,
      siteDomain: r.site_domain_name,
      campaignId: r.campaign_id,
      startTime: r.start_time,
      communicationId: r.communication_id,
    }),
  );

/** Inbound calls that started in the window, read as the same sessions a notification would carry. */
export async function fetchInboundCalls(client: CoMagicRpcClient, window: ReportWindow): Promise<CallRecord[]> {
  return fetchReport(client, "get.calls_report", CALL_FIELDS, callRow, window, { field: "direction", operator: "=", value: "in" }, {}, BATCH_PAGE_SIZE);
}

/**
 * Calls by their session ids, in one read, keyed by id; a call CoMagic's report does not have yet is missing.
 * `date_from`/`date_till` are required even with an id filter (FACTS-calls §1.1), so the window must cover
 * every call's start.
 */
export async function fetchCallRecords(client: CoMagicRpcClient, sessionIds: readonly string[], window: ReportWindow): Promise<Map<string, CallRecord>> {
  const rows = await fetchRowsAnyOf(client, "get.calls_report", CALL_FIELDS, callRow, window, "id", sessionIds);
  const wanted = new Set(sessionIds);
  return new Map(rows.filter((r) => wanted.has(r.id)).map((r) => [r.id, r]));
}

/** What identifies a visitor to the ad platforms, from CoMagic's visits (FACTS-loop §3.7), and when they were last seen. */
export interface VisitorClickIds {
  /** The latest visit's time (ms). */
  lastVisitAt: number | null;
  /** Yandex Metrica's ClientID, Direct's click id and GA's client id, each from the latest visit that has one. */
  ymClientId: string | null;
  yclid: string | null;
  gaClientId: string | null;
}

const clickRow = z.object({ id, date_time: z.string(), visitor_id: text, ym_client_id: text, yclid: text, ua_client_id: text }).loose();

/** The click ids of many visitors over the journey window, in one read (`visitor_id` in […]); an unknown visitor is missing. */
export async function fetchVisitorClickIds(client: CoMagicRpcClient, visitorIds: readonly string[], window: ReportWindow): Promise<Map<string, VisitorClickIds>> {
  const rows = await fetchRowsAnyOf(client, "get.visitor_sessions_report", Object.keys(clickRow.shape), clickRow, window, "visitor_id", visitorIds);
  const found = new Map<string, VisitorClickIds & { at: number }>();
  const ordered = rows.map((r) => ({ r, at: parseComagicDateTime(r.date_time, window.timeZone)?.getTime() ?? 0 })).sort((a, b) => a.at - b.at);
  for (const { r, at } of ordered) {
    if (!r.visitor_id) continue;
    const seen = found.get(r.visitor_id) ?? { at: 0, lastVisitAt: null, ymClientId: null, yclid: null, gaClientId: null };
    found.set(r.visitor_id, {
      at,
      lastVisitAt: at || seen.lastVisitAt,
      ymClientId: r.ym_client_id ?? seen.ymClientId,
      yclid: r.yclid ?? seen.yclid,
      gaClientId: r.ua_client_id ?? seen.gaClientId,
    });
  }
  return new Map([...found].map(([visitor, { at: _at, ...ids }]) => [visitor, ids]));
}
