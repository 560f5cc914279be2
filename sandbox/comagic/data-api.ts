import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { parseComagicDateTime } from "../../worker/domain/comagic-time";
import { SANDBOX_EMPLOYEES } from "./call-api";
import { SANDBOX_ACCOUNT_TIME_ZONE } from "./calls-report-row";
import { createDealsSandbox } from "./deals";
import { createOfflineUploadsSandbox } from "./offline-uploads";
import { CAMPAIGN_DAILY_STAT_SPEC, CHAT_MESSAGES_SPEC, type ReportSpec, tableSpecs } from "./report-fields";
import { applySort, checkFilter, checkSort, matches } from "./report-filter";
import { RpcError } from "./rpc-error";

/*
 * CoMagic Data API v2.0 (JSON-RPC 2.0) as ../shared/reference/comagic/FACTS.md and docs/data_api*.txt describe it:
 * login.user with expiring session tokens, -32001 after expiry; report methods with fields, filter, sort, limit
 * and offset checked against the docs' tables (report-fields.ts); the 3-month date window; points per day and per
 * minute, charged only for successful requests, refused with -32029 limit_exceeded, reported in metadata.limits
 * of every answer. What the sources leave open (report lag, which methods refuse `in`) is a setting.
 */

type Row = Record<string, unknown>;
type Params = Record<string, unknown>;

/** The report rows a test seeds, by the name POST /_sandbox/comagic/data takes them under. */
export type ReportKey = "visitor_sessions" | "communications" | "calls" | "chats" | "offline_messages" | "chat_messages" | "campaign_daily_stat";

interface ReportDef {
  key: ReportKey;
  spec: ReportSpec;
  /** The column that dates a row: date_from/date_till select on it, and report lag counts from it. */
  time: string;
  /** Parameters the method takes besides access_token, user_id, limit, offset, filter, fields, sort. */
  params: string[];
}

/** Parameters every get method takes (e.g. data_api__report__get_chats_report.txt:16-22). */
const GET_PARAMS = ["access_token", "user_id", "limit", "offset", "filter", "fields", "sort"];
const DATES = ["date_from", "date_till"];

const TABLES = tableSpecs();
const table = (method: string): ReportSpec => {
  const spec = TABLES[method];
  if (!spec) throw new Error(`no field table for ${method}`);
  return spec;
};

const REPORTS: Record<string, ReportDef> = {
  "get.visitor_sessions_report": { key: "visitor_sessions", spec: table("get.visitor_sessions_report"), time: "date_time", params: DATES },
  "get.communications_report": { key: "communications", spec: table("get.communications_report"), time: "date_time", params: DATES },
  // FACTS.md:135: get.calls_report alone takes include_ongoing_calls; FACTS-calls.md:53: ongoing calls are left out by default.
  "get.calls_report": { key: "calls", spec: table("get.calls_report"), time: "start_time", params: [...DATES, "include_ongoing_calls"] },
  // data_api__report__get_chats_report.txt:23-24 (dates required, nothing else); l.41: date_time is the chat's start.
  "get.chats_report": { key: "chats", spec: table("get.chats_report"), time: "date_time", params: DATES },
  // data_api__report__get_offline_messages_report.txt:23-25; l.32: date_time ("получения заявки") dates a request though it is no default.
  "get.offline_messages_report": { key: "offline_messages", spec: table("get.offline_messages_report"), time: "date_time", params: [...DATES, "include_tech_offline_messages"] },
  // data_api__report__get_chat_messages_report.txt:23-32: chat_id, chat_ids, or dates (≤ 30 days), or both.
  "get.chat_messages_report": { key: "chat_messages", spec: CHAT_MESSAGES_SPEC, time: "date_time", params: ["chat_id", "chat_ids", ...DATES] },
  "get.campaign_daily_stat": { key: "campaign_daily_stat", spec: CAMPAIGN_DAILY_STAT_SPEC, time: "date", params: [...DATES, "site_id"] },
};

const DATE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
/*
 * FACTS-calls §2 [CONFLICT]: the error says "Max value of requested date interval is 3 months", the reports
 * index says "90 дней". Which the server applies is unknown, so the sandbox refuses what either reading refuses.
 */
const MAX_INTERVAL_MS = 90 * 86_400_000;
/** data_api__report__get_chat_messages_report.txt:28,31: "Максимальное значение интервала не должно превышать 30 дней". */
const MAX_MESSAGES_INTERVAL_MS = 30 * 86_400_000;
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** `till` is more than three calendar months after `from` (the day clamped: 31 May − 3 months = 28/29 Feb). */
function beyondThreeMonths(from: string, till: string): boolean {
  const [y, m, d] = till.slice(0, 10).split("-").map(Number) as [number, number, number];
  const lastDay = new Date(Date.UTC(y, m - 3, 0)).getUTCDate();
  const back = Date.UTC(y, m - 4, Math.min(d, lastDay)) + (Date.parse(`${till.replace(" ", "T")}Z`) % 86_400_000);
  return Date.parse(`${from.replace(" ", "T")}Z`) < back;
}

const wallClockMs = (text: string) => Date.parse(`${text.replace(" ", "T")}Z`);

export interface DataApiSettings {
  login: string;
  password: string;
  /** Permanent API keys that work without login.user. */
  apiKeys: string[];
  tokenLifetimeSeconds: number;
  /** A session token expires after this many calls (0: never): makes expiry happen within a test. */
  tokenMaxCalls: number;
  /** Points per minute and per day (data_api.txt:139-144); every method weighs 1 point (l.150). */
  minuteLimit: number;
  dayLimit: number;
  /** Share of report calls answered with an error, and which: limit_exceeded, internal_error, http_503. */
  faultRate: number;
  faultKinds: ("limit" | "internal" | "http_503")[];
  /** Makes up a plausible journey for a visitor nobody seeded (for `npm start`, never in tests). */
  syntheticVisitors: boolean;
  /** Seconds a limit_exceeded fault says until the limit resets (null: until the real minute ends). */
  limitResetSeconds: number | null;
  /**
   * How long a seeded call stays out of get.calls_report after it was seeded (ms). FACTS-calls.md:55-56: no
   * source states the lag behind notifications, but `include_ongoing_calls` and the real-time `get.visits`
   * suggest there is one.
   */
  callsReportLagMs: number;
  /**
   * How long a row stays out of its report after its own time (`start_time` of a call, `date_time` of a chat,
   * request, message, visit or contact), per report. The same [UNCERTAIN] lag (FACTS-calls.md:55-56), and nothing
   * at all is said of chats or requests: a test picks the reading it needs.
   */
  reportLagMs: Partial<Record<ReportKey, number>>;
  /**
   * Methods that refuse the `in`/`not_in` operators, and with which error: "Доступно не для всех методов"
   * (data_api.txt:513-514) without saying which, nor what the refusal looks like (l.248 or l.250).
   */
  inRefused: string[];
  inRefusedAs: "invalid_parameter_value" | "filter_prohibited";
}

/**
 * One-off changes to the point counters, sent with the settings ({"dayLimit":750,"dayRemaining":80}): how many
 * points are left and how soon each limit resets, to script "the day is almost spent".
 */
export interface PointControls {
  dayRemaining?: number;
  minuteRemaining?: number;
  dayResetSeconds?: number;
  minuteResetSeconds?: number;
}

/** Generous limits, so that no test runs out of points unless it sets its own. */
const DEFAULTS: DataApiSettings = {
  login: "sandbox",
  password: "sandbox-password",
  apiKeys: [],
  tokenLifetimeSeconds: 3600,
  tokenMaxCalls: 0,
  minuteLimit: 1000,
  dayLimit: 100_000,
  faultRate: 0,
  faultKinds: ["limit", "internal", "http_503"],
  syntheticVisitors: false,
  limitResetSeconds: null,
  callsReportLagMs: 0,
  reportLagMs: {},
  inRefused: [],
  inRefusedAs: "invalid_parameter_value",
};

function formatDateTime(date: Date): string {
  return date.toISOString().slice(0, 19).replace("T", " ");
}

/** A deterministic made-up journey: a few visits from different channels over the last weeks. */
function syntheticSessions(visitorId: number, now: Date): Row[] {
  const sources = [
    { channel: "paid", utm_source: "yandex", utm_medium: "cpc", utm_campaign: "sofas_search", referrer: "https://yandex.ru/" },
    { channel: "organic", utm_source: null, utm_medium: null, utm_campaign: null, referrer: "https://www.google.com/" },
    { channel: "social", utm_source: "vk", utm_medium: "social", utm_campaign: "autumn", referrer: "https://vk.com/" },
    { channel: "direct", utm_source: null, utm_medium: null, utm_campaign: null, referrer: null },
  ];
  const count = 2 + (visitorId % 3);
  return Array.from({ length: count }, (_, i) => {
    const source = sources[(visitorId + i) % sources.length] ?? sources[0];
    const at = new Date(now.getTime() - (count - i) * 3 * 86_400_000 - (visitorId % 7) * 3_600_000);
    return {
      id: visitorId * 10 + i,
      date_time: formatDateTime(at),
      visitor_id: visitorId,
      person_id: visitorId + 1,
      entrance_page: `https://shop.example.ru/${["sofas", "", "chairs", "sale"][i % 4]}`,
      referrer_domain: source?.referrer ? new URL(source.referrer).host : null,
      site_domain_name: "shop.example.ru",
      visitor_device: i % 2 ? "mobile" : "desktop",
      source_name: source?.channel,
      utm_content: null,
      utm_term: null,
      ...source,
    };
  });
}

const missed = (field: string) => new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field });
const wrongType = (field: string) => new RpcError(-32602, "data_type_error", "Data supplied is of wrong type", { field });

/** data_api.txt:240: a parameter the method's JSON structure does not have is `unexpected_parameters`. */
function checkParams(params: Params, allowed: string[]): void {
  const unexpected = Object.keys(params).find((name) => !allowed.includes(name));
  if (unexpected !== undefined) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: unexpected });
}

function optionalBoolean(params: Params, name: string): boolean {
  const value = params[name];
  if (value === undefined) return false;
  if (typeof value !== "boolean") throw wrongType(name);
  return value;
}

/** The visitors a filter asks for by `visitor_id` (`=` or `in`), for made-up journeys. */
function visitorIdsOf(filter: unknown): number[] {
  const f = (filter ?? {}) as { field?: unknown; operator?: unknown; value?: unknown };
  if (f.field !== "visitor_id") return [];
  const values = f.operator === "in" && Array.isArray(f.value) ? f.value : f.operator === "=" ? [f.value] : [];
  return values.map(Number).filter(Number.isFinite);
}

/** `account`: this CoMagic account's login and password (a reset keeps them); by default `sandbox` / `sandbox-password`. */
export function createDataApiSandbox(options: { now?: () => number; account?: { login: string; password: string } } = {}) {
  const now = options.now ?? Date.now;
  const defaults: DataApiSettings = { ...DEFAULTS, ...options.account };
  let settings: DataApiSettings = { ...defaults };
  const tokens = new Map<string, { expireAt: number; calls: number }>();
  const data: Record<ReportKey, Row[]> = { visitor_sessions: [], communications: [], calls: [], chats: [], offline_messages: [], chat_messages: [], campaign_daily_stat: [] };
  /** get.visitors' people: `{id, name, phones, emails, usernames}` (data_api__person__get_visitors.txt:26-30). */
  const visitors: Row[] = [];
  /** When each call row was seeded: it shows in the report only `callsReportLagMs` later. */
  const seededAt = new WeakMap<Row, number>();
  /**
   * authorizedCalls: calls a token (or key) was accepted for; with tokenMaxCalls it bounds how many logins were
   * needed. points: what successful requests were charged, in all and per method.
   */
  const stats = {
    requests: 0,
    logins: 0,
    authorizedCalls: 0,
    methods: {} as Record<string, number>,
    errors: {} as Record<string, number>,
    points: { total: 0, methods: {} as Record<string, number> },
  };
  let minute = { start: now(), used: 0 };
  let day = { start: now(), used: 0 };
  let faultState = 11;
  // Funnels and deals (deals.ts); a deal links to a seeded call, chat or request by its communication_id.
  const COMMUNICATION_ROWS: Record<string, [ReportKey, string]> = { call: ["calls", "start_time"], chat: ["chats", "date_time"], offline_message: ["offline_messages", "date_time"] };
  const deals = createDealsSandbox({
    now,
    timeZone: SANDBOX_ACCOUNT_TIME_ZONE,
    communicationTime(id, type) {
      const [key, time] = COMMUNICATION_ROWS[type] ?? ["communications", "date_time"];
      const row = data[key].find((r) => Number(r.communication_id) === id);
      return typeof row?.[time] === "string" ? (row[time] as string) : null;
    },
  });
  // upload.offline_messages (offline-uploads.ts): checked against seeded sessions, stored as get.offline_messages_report rows.
  const offlineUploads = createOfflineUploadsSandbox({
    now,
    timeZone: SANDBOX_ACCOUNT_TIME_ZONE,
    session: (id) => data.visitor_sessions.find((r) => Number(r.id) === id),
    record: (row) => data.offline_messages.push(row),
  });

  const nextRandom = () => {
    faultState = (faultState * 1103515245 + 12345) % 2 ** 31;
    return faultState / 2 ** 31;
  };

  /** Starts a new minute or day once the old one is over. */
  function roll(): void {
    const t = now();
    if (t - minute.start >= MINUTE_MS) minute = { start: t, used: 0 };
    if (t - day.start >= DAY_MS) day = { start: t, used: 0 };
  }

  /** metadata.limits (data_api.txt:135-144, 597-604): `*_reset` in seconds until that limit resets. */
  function limits() {
    roll();
    const t = now();
    return {
      day_limit: settings.dayLimit,
      day_remaining: Math.max(0, settings.dayLimit - day.used),
      day_reset: Math.max(1, Math.ceil((day.start + DAY_MS - t) / 1000)),
      minute_limit: settings.minuteLimit,
      minute_remaining: Math.max(0, settings.minuteLimit - minute.used),
      minute_reset: Math.max(1, Math.ceil((minute.start + MINUTE_MS - t) / 1000)),
    };
  }

  /** The documented refusal: "Limit per {limit_type} has been exceeded. …" with its substitutions in data.params (data_api.txt:169,225). */
  function limitExceeded(type: "day" | "minute"): RpcError {
    const max = type === "day" ? settings.dayLimit : settings.minuteLimit;
    return new RpcError(-32029, "limit_exceeded", `Limit per ${type} has been exceeded. Value of current limit per ${type} is ${max}`, {
      params: { limit_type: type, limit_max_value: max },
    });
  }

  /** Refuses a request when the day's or the minute's points are spent (the day first: it is the longer wait). */
  function refuseWhenSpent(): void {
    roll();
    if (day.used >= settings.dayLimit) throw limitExceeded("day");
    if (minute.used >= settings.minuteLimit) throw limitExceeded("minute");
  }

  /** One point per successful request, whatever the method and the rows (data_api.txt:129,150). */
  function charge(method: string): void {
    minute.used += 1;
    day.used += 1;
    stats.points.total += 1;
    stats.points.methods[method] = (stats.points.methods[method] ?? 0) + 1;
  }

  function applySettings(input: Partial<DataApiSettings> & PointControls): void {
    const { dayRemaining, minuteRemaining, dayResetSeconds, minuteResetSeconds, ...rest } = input;
    settings = { ...settings, ...rest, reportLagMs: { ...settings.reportLagMs, ...(rest.reportLagMs ?? {}) } };
    roll();
    const t = now();
    if (dayResetSeconds !== undefined) day.start = t + dayResetSeconds * 1000 - DAY_MS;
    if (minuteResetSeconds !== undefined) minute.start = t + minuteResetSeconds * 1000 - MINUTE_MS;
    if (dayRemaining !== undefined) day.used = Math.max(0, settings.dayLimit - dayRemaining);
    if (minuteRemaining !== undefined) minute.used = Math.max(0, settings.minuteLimit - minuteRemaining);
  }

  function authenticate(params: Params): void {
    const token = params.access_token;
    if (typeof token !== "string" || token === "") throw missed("access_token");
    if (settings.apiKeys.includes(token)) {
      stats.authorizedCalls += 1;
      return;
    }
    const session = tokens.get(token);
    if (!session) throw new RpcError(-32001, "access_token_invalid", "Access token is invalid");
    session.calls += 1;
    if (now() >= session.expireAt || (settings.tokenMaxCalls > 0 && session.calls > settings.tokenMaxCalls)) {
      throw new RpcError(-32001, "access_token_expired", "Access token has been expired");
    }
    stats.authorizedCalls += 1;
  }

  /** The instant a row's own time stands for (report times are the account's wall clock, FACTS.md §1.1). */
  function rowInstant(text: unknown): number | null {
    return typeof text === "string" ? (parseComagicDateTime(text, SANDBOX_ACCOUNT_TIME_ZONE)?.getTime() ?? null) : null;
  }

  function checkDates(params: Params, maxMs: number | null): { from: string; till: string } {
    for (const name of DATES) {
      const value = params[name];
      if (value === undefined) throw missed(name);
      if (typeof value !== "string") throw wrongType(name);
      if (!DATE_TIME.test(value)) throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: name, value });
    }
    const from = params.date_from as string;
    const till = params.date_till as string;
    if (maxMs === null) {
      if (wallClockMs(till) - wallClockMs(from) > MAX_INTERVAL_MS || beyondThreeMonths(from, till)) {
        throw new RpcError(-32602, "date_interval_limit_reached", "Max value of requested date interval is 3 months");
      }
    } else if (wallClockMs(till) - wallClockMs(from) > maxMs) {
      // The mnemonic of data_api.txt:251; the docs give no text for the 30-day limit.
      throw new RpcError(-32602, "date_interval_limit_reached", "Max value of requested date interval is 30 days");
    }
    return { from, till };
  }

  /** get.chat_messages_report's selection: chat_id, chat_ids or dates, or ids and dates together (l.23-32). */
  function chatMessagesSelection(params: Params): (row: Row) => boolean {
    const hasDates = params.date_from !== undefined || params.date_till !== undefined;
    if (params.chat_id === undefined && params.chat_ids === undefined && !hasDates) throw missed("chat_id");
    if (params.chat_id !== undefined && typeof params.chat_id !== "number") throw wrongType("chat_id");
    if (params.chat_ids !== undefined && !Array.isArray(params.chat_ids)) throw wrongType("chat_ids");
    const ids = [...(params.chat_id === undefined ? [] : [params.chat_id]), ...((params.chat_ids as unknown[] | undefined) ?? [])].map(String);
    const window = hasDates ? checkDates(params, MAX_MESSAGES_INTERVAL_MS) : null;
    return (row) => {
      if (ids.length > 0 && !ids.includes(String(row.chat_id))) return false;
      return window === null || (String(row.date_time) >= window.from && String(row.date_time) <= window.till);
    };
  }

  function report(method: string, def: ReportDef, params: Params) {
    checkParams(params, [...GET_PARAMS, ...def.params]);
    const spec = def.spec;
    const inWindow =
      def.key === "chat_messages"
        ? chatMessagesSelection(params)
        : (() => {
            const { from, till } = checkDates(params, null);
            // A day-only column ("date") stands for that day's midnight.
            return (row: Row) => {
              const t = def.time === "date" ? `${String(row.date ?? "")} 00:00:00` : String(row[def.time] ?? "");
              return t >= from && t <= till;
            };
          })();
    const fields = params.fields === undefined ? spec.defaults : params.fields;
    if (!Array.isArray(fields)) throw wrongType("fields");
    // data_api.txt:635-639: a field the method does not have is unexpected_parameters.
    const unknown = fields.find((f) => !spec.fields.includes(String(f)));
    if (unknown !== undefined) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: `fields.${String(unknown)}` });
    // data_api.txt:555-562: limit 1000 by default, at most 10,000; offset at most 100,000.
    const limit = Number(params.limit ?? 1000);
    const offset = Number(params.offset ?? 0);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: "limit" });
    if (!Number.isInteger(offset) || offset < 0 || offset > 100_000) throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: "offset" });
    if (def.key === "campaign_daily_stat" && typeof params.site_id !== "number") throw missed("site_id");
    checkFilter(params.filter, spec, method, { methods: settings.inRefused, as: settings.inRefusedAs });
    const sort = checkSort(params.sort, spec);
    const ongoingWanted = optionalBoolean(params, "include_ongoing_calls");
    const techWanted = optionalBoolean(params, "include_tech_offline_messages");

    const t = now();
    const lag = settings.reportLagMs[def.key] ?? 0;
    /** A call still going on: its seeded finish_time is later than now (FACTS-calls.md:53). */
    const ongoing = (row: Row) => def.key === "calls" && (rowInstant(row.finish_time) ?? 0) > t;
    const visible = (row: Row) => {
      if (def.key === "calls" && (seededAt.get(row) ?? 0) > t - settings.callsReportLagMs) return false;
      if (lag > 0 && def.time !== "date" && (rowInstant(row[def.time]) ?? 0) > t - lag) return false;
      if (ongoing(row) && !ongoingWanted) return false;
      // l.25: technical requests "не являющиеся коммуникациями с клиентами" only with the flag; no field marks them.
      if (def.key === "offline_messages" && row.tech === true && !techWanted) return false;
      return true;
    };
    let rows = data[def.key].filter((row) => {
      if (def.key === "campaign_daily_stat" && Number(row.site_id) !== params.site_id) return false;
      return visible(row) && inWindow(row) && matches(row, params.filter);
    });
    if (settings.syntheticVisitors && def.key === "visitor_sessions") {
      const seeded = new Set(rows.map((r) => String(r.visitor_id)));
      const madeUp = visitorIdsOf(params.filter).filter((id) => !seeded.has(String(id)));
      rows.push(...madeUp.flatMap((id) => syntheticSessions(id, new Date(t))).filter(inWindow));
    }
    // Rows come in time order (chat messages: "в порядке их отправки", l.58), then as `sort` asks.
    rows.sort((a, b) => String(a[def.time]).localeCompare(String(b[def.time])));
    rows = applySort(rows, sort);
    const page = rows.slice(offset, offset + limit).map((row) =>
      Object.fromEntries(
        fields.map((f) => {
          const name = String(f);
          if (name === "finish_time" && ongoing(row)) return [name, null];
          return [name, row[name] ?? (spec.arrays.includes(name) ? [] : null)];
        }),
      ),
    );
    return { data: page, metadata: { total_items: rows.length } };
  }

  /** get.visitors: `ids` required (data_api__person__get_visitors.txt:20); unknown ids are simply absent. */
  function getVisitors(params: Params) {
    checkParams(params, ["access_token", "user_id", "ids"]);
    if (params.ids === undefined) throw missed("ids");
    if (!Array.isArray(params.ids)) throw wrongType("ids");
    const ids = params.ids.map(String);
    const rows = visitors.filter((v) => ids.includes(String(v.id)));
    return {
      data: rows.map((v) => ({ id: v.id, name: v.name ?? null, phones: v.phones ?? [], emails: v.emails ?? [], usernames: v.usernames ?? [] })),
      metadata: { total_items: rows.length },
    };
  }

  function getEmployees(params: Params) {
    checkParams(params, GET_PARAMS);
    const rows = SANDBOX_EMPLOYEES.filter((e) => matches(e as unknown as Row, params.filter));
    const fields = Array.isArray(params.fields) ? params.fields.map(String) : ["id", "full_name", "email"];
    return { data: rows.map((e) => Object.fromEntries(fields.map((f) => [f, (e as unknown as Row)[f] ?? null]))), metadata: { total_items: rows.length } };
  }

  function dispatch(method: string, params: Params): unknown {
    if (method === "login.user") {
      if (params.login !== settings.login || params.password !== settings.password) throw new RpcError(-32001, "auth_error", "Login or password is wrong");
      stats.logins += 1;
      const token = randomBytes(24).toString("hex");
      const expireAt = now() + settings.tokenLifetimeSeconds * 1000;
      tokens.set(token, { expireAt, calls: 0 });
      return { data: { access_token: token, expire_at: Math.floor(expireAt / 1000), app_id: 1 } };
    }
    authenticate(params);
    if (method === "logout.user") {
      tokens.delete(String(params.access_token));
      return { data: {} };
    }
    refuseWhenSpent();
    const def = REPORTS[method];
    let answer: { data: unknown; metadata: Record<string, unknown> };
    if (def) answer = report(method, def, params);
    else if (method === "get.visitors") answer = getVisitors(params);
    else if (method === "get.employees") answer = getEmployees(params);
    else if (deals.handles(method)) answer = deals.call(method, params);
    else if (offlineUploads.handles(method)) answer = offlineUploads.call(method, params);
    // FACTS.md §1.1: get.account answers the account's IANA `timezone`; its `name` and the one-row `data` array are
    // inferred from clients of the same platform (not in comagic/docs/): the worker reads an object too.
    else if (method === "get.account") answer = { data: [{ app_id: 1, name: `Sandbox shop (${settings.login})`, timezone: SANDBOX_ACCOUNT_TIME_ZONE }], metadata: {} };
    else throw new RpcError(-32601, "method_not_found", "The method does not exist");
    // Charged only now that it succeeded; the limits it answers with include this request.
    charge(method);
    return { data: answer.data, metadata: { ...answer.metadata, limits: limits() } };
  }

  const app = new Hono();
  app.post("/comagic/dataapi/v2.0", async (c) => {
    stats.requests += 1;
    let request: { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
    // data_api.txt:173-197: an error's metadata (with the limits, l.131) sits in error.data.metadata.
    const fail = (id: unknown, error: RpcError, limitsNow = limits()) => {
      stats.errors[error.mnemonic] = (stats.errors[error.mnemonic] ?? 0) + 1;
      return c.json({ jsonrpc: "2.0", id: id ?? null, error: { code: error.code, message: error.message, data: { mnemonic: error.mnemonic, ...error.extra, metadata: { limits: limitsNow } } } });
    };
    try {
      request = JSON.parse(await c.req.text());
    } catch {
      return fail(null, new RpcError(-32700, "parse_error", "Invalid JSON was received by the server."));
    }
    if (Array.isArray(request)) return fail(null, new RpcError(-32099, "batch_opreations_not_supported", "Batch operations not supported"));
    if (request.jsonrpc !== "2.0" || typeof request.method !== "string")
      return fail(request.id, new RpcError(-32600, "invalid_request", "Invalid Request The JSON sent is not a valid Request object"));
    if (request.id === undefined || request.id === null) return fail(null, new RpcError(-32099, "notifications_not_supported", "Notifications not supported"));
    const method = request.method;
    stats.methods[method] = (stats.methods[method] ?? 0) + 1;
    if (method.startsWith("get.") && settings.faultRate > 0 && nextRandom() < settings.faultRate) {
      const kind = settings.faultKinds[Math.floor(nextRandom() * settings.faultKinds.length)];
      if (kind === "http_503") return c.text("Service Temporarily Unavailable", 503);
      if (kind === "internal") return fail(request.id, new RpcError(-32603, "internal_error", "Internal error, contact the support service"));
      // An injected minute limit: the minute's points read as spent, reset when limitResetSeconds says.
      const limitsNow = limits();
      return fail(request.id, limitExceeded("minute"), { ...limitsNow, minute_remaining: 0, minute_reset: settings.limitResetSeconds ?? limitsNow.minute_reset });
    }
    try {
      return c.json({ jsonrpc: "2.0", id: request.id, result: dispatch(method, (request.params ?? {}) as Params) });
    } catch (error) {
      if (error instanceof RpcError) return fail(request.id, error);
      return fail(request.id, new RpcError(-32603, "internal_error", "Internal error, contact the support service"));
    }
  });

  /** Settings ({"dayLimit":750,"reportLagMs":{"chats":60000},"inRefused":["get.calls_report"]}) and point controls ({"dayRemaining":80}). */
  app.post("/_sandbox/comagic/settings", async (c) => {
    applySettings((await c.req.json()) as Partial<DataApiSettings> & PointControls);
    return c.json({ ok: true, settings: { ...settings, password: "***" }, limits: limits() });
  });
  /** Back to the defaults, with no rows, tokens or counts, and a new minute and day. */
  app.post("/_sandbox/comagic/reset", (c) => {
    settings = { ...defaults };
    tokens.clear();
    for (const rows of Object.values(data)) rows.length = 0;
    visitors.length = 0;
    deals.reset();
    offlineUploads.reset();
    Object.assign(stats, { requests: 0, logins: 0, authorizedCalls: 0, methods: {}, errors: {}, points: { total: 0, methods: {} } });
    minute = { start: now(), used: 0 };
    day = { start: now(), used: 0 };
    return c.json({ ok: true });
  });
  /**
   * Seeds rows: `{"visitor_sessions": [...], "communications": [...], "calls": [...], "campaign_daily_stat": [...],
   * "chats": [...], "chat_messages": [...], "offline_messages": [...], "visitors": [...]}`. A request seeded with
   * `"tech": true` is technical (shown only with include_tech_offline_messages); a call with a `finish_time` still
   * to come is ongoing (shown only with include_ongoing_calls).
   */
  app.post("/_sandbox/comagic/data", async (c) => {
    const body = (await c.req.json()) as Partial<Record<ReportKey | "visitors", Row[]>>;
    const t = now();
    for (const key of Object.keys(data) as ReportKey[]) {
      for (const row of body[key] ?? []) {
        if (key === "calls") seededAt.set(row, t);
        data[key].push(row);
      }
    }
    visitors.push(...(body.visitors ?? []));
    return c.json({ ok: true });
  });
  app.get("/_sandbox/comagic/stats", (c) => c.json({ ...stats, limits: limits() }));
  app.route("/", deals.control);
  app.route("/", offlineUploads.control);

  /** A call CoMagic itself recorded (the Call API's), added to get.calls_report like a seeded one. */
  const recordCall = (row: Row) => {
    seededAt.set(row, now());
    data.calls.push(row);
  };

  return { app, recordCall, setSettings: (s: Partial<DataApiSettings> & PointControls) => applySettings(s), credentials: () => ({ login: settings.login, password: settings.password }) };
}
