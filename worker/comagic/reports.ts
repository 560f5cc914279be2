import * as z from "zod";
import type { CallRecord } from "../domain/call-record";
import { formatComagicDateTime, parseComagicDateTime } from "../domain/comagic-time";
import { journeyWindow, type ReportWindow } from "../domain/report-window";
import { buildJourney, type ContactTouch, type Journey, type SessionTouch } from "../domain/touchpoints";
import { CoMagicError, type CoMagicRpcClient } from "./data-api";

/** CoMagic allows at most 10,000 rows a page; 1,000 keeps each answer small. */
const PAGE_SIZE = 1000;
/** The Data API refuses offsets above 100,000. */
const MAX_OFFSET = 100_000;
const UTM_FIELDS = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"] as const;

const id = z.union([z.string(), z.number()]).transform(String);
const text = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === null || v === undefined || v === "" ? null : String(v)));
const utmShape = Object.fromEntries(UTM_FIELDS.map((f) => [f, text])) as Record<(typeof UTM_FIELDS)[number], typeof text>;
const toUtm = (r: Record<(typeof UTM_FIELDS)[number], string | null>) => ({ source: r.utm_source, medium: r.utm_medium, campaign: r.utm_campaign, content: r.utm_content, term: r.utm_term });

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
): Promise<T[]> {
  const rows: T[] = [];
  for (let offset = 0; offset <= MAX_OFFSET; offset += PAGE_SIZE) {
    const { data, metadata } = await client.call(method, {
      date_from: formatComagicDateTime(window.from, window.timeZone),
      date_till: formatComagicDateTime(window.to, window.timeZone),
      fields,
      ...(filter === undefined ? {} : { filter }),
      ...extra,
      limit: PAGE_SIZE,
      offset,
    });
    const page = z.array(row).safeParse(data);
    if (!page.success) throw new CoMagicError("unexpected_answer", `CoMagic Data API ${method}: rows not as expected`, true);
    rows.push(...page.data);
    const total = typeof metadata.total_items === "number" ? metadata.total_items : rows.length;
    if (page.data.length < PAGE_SIZE || rows.length >= total) break;
  }
  return rows;
}

const SESSION_FIELDS = ["id", "date_time", "visitor_id", "channel", "source_name", "referrer", "entrance_page", "campaign_id", "campaign_name", "site_id", ...UTM_FIELDS];
const sessionRow = z
  .object({ id, date_time: z.string(), channel: text, source_name: text, referrer: text, entrance_page: text, campaign_id: text, campaign_name: text, site_id: text, ...utmShape })
  .loose();

const COMMUNICATION_FIELDS = ["id", "communication_type", "date_time", "visitor_id", "visitor_session_id"];
const communicationRow = z.object({ id, communication_type: z.string(), date_time: z.string(), visitor_session_id: text }).loose();
const CONTACT_TYPES = new Set(["call", "chat", "offline_message", "goal"]);

function isoAt(text: string, timeZone: string): string {
  return (parseComagicDateTime(text, timeZone) ?? new Date(0)).toISOString();
}

/** A visitor's visits and contacts in the window, as touchpoints. */
export async function fetchVisitorTouchpoints(client: CoMagicRpcClient, visitorId: string, window: ReportWindow): Promise<(SessionTouch | ContactTouch)[]> {
  const filter = { field: "visitor_id", operator: "=", value: Number(visitorId) };
  const sessions = await fetchReport(client, "get.visitor_sessions_report", SESSION_FIELDS, sessionRow, window, filter);
  const contacts = await fetchReport(client, "get.communications_report", COMMUNICATION_FIELDS, communicationRow, window, filter);
  return [
    ...sessions.map(
      (s): SessionTouch => ({
        type: "session",
        at: isoAt(s.date_time, window.timeZone),
        sessionId: s.id,
        channel: s.channel,
        source: s.source_name,
        utm: toUtm(s),
        referrer: s.referrer,
        entrancePage: s.entrance_page,
        campaignId: s.campaign_id,
        campaignName: s.campaign_name,
        siteId: s.site_id,
      }),
    ),
    ...contacts
      .filter((c) => CONTACT_TYPES.has(c.communication_type))
      .map((c): ContactTouch => ({ type: c.communication_type as ContactTouch["type"], at: isoAt(c.date_time, window.timeZone), id: c.id, sessionId: c.visitor_session_id })),
  ];
}

/** A visitor's journey over the longest window CoMagic accepts, ending now: for enrichment and the tab alike. */
export async function loadJourney(client: CoMagicRpcClient, visitorId: string, now: Date, timeZone: string): Promise<Journey> {
  return buildJourney(visitorId, now, await fetchVisitorTouchpoints(client, visitorId, journeyWindow(now, timeZone)));
}

/**
 * What get.calls_report says of a call (FACTS-calls §1.2). Every field is named: most are not defaults.
 * The raw utm_* win over CoMagic's extended eq_utm_*, which fill in where the visit had none.
 */
const CALL_FIELDS = [
  "id",
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
    }),
  );

/** Inbound calls that started in the window, read as the same sessions a notification would carry. */
export async function fetchInboundCalls(client: CoMagicRpcClient, window: ReportWindow): Promise<CallRecord[]> {
  return fetchReport(client, "get.calls_report", CALL_FIELDS, callRow, window, { field: "direction", operator: "=", value: "in" });
}

/**
 * One call by its session id, or null while CoMagic's report does not have it yet. `date_from`/`date_till`
 * are required even with an id filter (FACTS-calls §1.1), so the window must cover the call's start.
 */
export async function fetchCallRecord(client: CoMagicRpcClient, sessionId: string, window: ReportWindow): Promise<CallRecord | null> {
  const rows = await fetchReport(client, "get.calls_report", CALL_FIELDS, callRow, window, { field: "id", operator: "=", value: Number(sessionId) });
  return rows.find((r) => r.id === sessionId) ?? null;
}
