import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { SANDBOX_EMPLOYEES } from "./call-api";
import { RpcError } from "./rpc-error";

/*
 * CoMagic Data API v2.0 (JSON-RPC 2.0) as ../shared/reference/comagic/FACTS.md describes it: login.user with
 * expiring session tokens, -32001 after expiry, -32029 limit_exceeded with metadata.limits, report methods
 * with fields/filter/limit/offset and defaults that omit visitor_id and UTMs, the 3-month date window.
 */

type Row = Record<string, unknown>;
type Params = Record<string, unknown>;

const UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"];

/** Every field the sandbox knows per report, and the defaults returned when `fields` is omitted. */
const REPORTS: Record<string, { fields: string[]; defaults: string[]; time: string; filterable?: string[] }> = {
  "get.visitor_sessions_report": {
    fields: [
      "id",
      "date_time",
      "referrer",
      "referrer_domain",
      "entrance_page",
      "channel",
      "campaign_name",
      "site_domain_name",
      "visitor_id",
      "person_id",
      "visitor_device",
      "source_name",
      "gclid",
      "yclid",
      "search_query",
      ...UTM,
    ],
    defaults: ["campaign_id", "site_id", "person_id", "visitor_id", "visitor_device"],
    time: "date_time",
  },
  "get.communications_report": {
    fields: ["id", "communication_type", "date_time", "visitor_id", "person_id", "visitor_session_id", "site_id", "campaign_id", "channel", "communication_page_url", "source_name", ...UTM],
    defaults: ["id", "communication_type", "date_time", "visitor_id", "person_id", "visitor_session_id", "site_id", "campaign_id"],
    time: "date_time",
  },
  // ../shared/reference/comagic/samples/fields_get_calls_report.tsv: `start_time` is not filterable; `id`, `direction`, `call_api_external_id` are.
  "get.calls_report": {
    fields: [
      "id",
      "start_time",
      "finish_time",
      "direction",
      "source",
      "is_lost",
      "contact_phone_number",
      "communication_id",
      "communication_number",
      "wait_duration",
      "talk_duration",
      "total_duration",
      "call_records",
      "full_record_file_link",
      "virtual_phone_number",
      "visitor_id",
      "channel",
      "source_name",
      "site_domain_name",
      "site_id",
      "campaign_id",
      "campaign_name",
      "entrance_page",
      "tags",
      "employees",
      "last_answered_employee_id",
      "last_answered_employee_full_name",
      "call_api_external_id",
      ...UTM,
      ...UTM.map((f) => `eq_${f}`),
    ],
    defaults: [
      "id",
      "start_time",
      "finish_time",
      "finish_reason",
      "direction",
      "source",
      "is_lost",
      "contact_phone_number",
      "communication_id",
      "wait_duration",
      "talk_duration",
      "total_duration",
      "call_records",
      "full_record_file_link",
      "virtual_phone_number",
    ],
    time: "start_time",
    filterable: [
      "id",
      "direction",
      "is_lost",
      "contact_phone_number",
      "communication_id",
      "visitor_id",
      "channel",
      "source_name",
      "site_domain_name",
      "site_id",
      "campaign_id",
      "entrance_page",
      "tags",
      "employees",
      "last_answered_employee_id",
      "call_api_external_id",
      ...UTM,
      ...UTM.map((f) => `eq_${f}`),
    ],
  },
};

/*
 * ../shared/reference/comagic/docs/data_api__report__get_campaign_daily_stat.txt: `site_id` required, one row per
 * day, campaign, keyword and banner; `cost_sum` a string in the ad system's currency, `currency` per row
 * (FACTS-calls §5: values undocumented, so rows may say "RUB", "rub" or "RUR"). No UTM fields.
 */
REPORTS["get.campaign_daily_stat"] = {
  fields: [
    "date",
    "site_id",
    "site_domain_name",
    "campaign_id",
    "campaign_name",
    "campaign_ext_id",
    "campaign_ext_name",
    "engine",
    "keyword",
    "cost_sum",
    "currency",
    "shows_count",
    "clicks_count",
    "visits_count",
  ],
  defaults: ["date", "site_id", "site_domain_name", "campaign_id", "campaign_name", "campaign_ext_id", "campaign_ext_name", "engine", "cost_sum", "shows_count", "clicks_count"],
  time: "date",
  filterable: ["date", "site_id", "site_domain_name", "campaign_id", "campaign_name", "campaign_ext_id", "campaign_ext_name"],
};

const DATE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
/*
 * FACTS-calls §2 [CONFLICT]: the error says "Max value of requested date interval is 3 months", the reports
 * index says "90 дней". Which the server applies is unknown, so the sandbox refuses what either reading refuses.
 */
const MAX_INTERVAL_MS = 90 * 86_400_000;

/** `till` is more than three calendar months after `from` (the day clamped: 31 May − 3 months = 28/29 Feb). */
function beyondThreeMonths(from: string, till: string): boolean {
  const [y, m, d] = till.slice(0, 10).split("-").map(Number) as [number, number, number];
  const lastDay = new Date(Date.UTC(y, m - 3, 0)).getUTCDate();
  const back = Date.UTC(y, m - 4, Math.min(d, lastDay)) + (Date.parse(`${till.replace(" ", "T")}Z`) % 86_400_000);
  return Date.parse(`${from.replace(" ", "T")}Z`) < back;
}

export interface DataApiSettings {
  login: string;
  password: string;
  /** Permanent API keys that work without login.user. */
  apiKeys: string[];
  tokenLifetimeSeconds: number;
  /** A session token expires after this many calls (0: never): makes expiry happen within a test. */
  tokenMaxCalls: number;
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
   * How long a seeded call stays out of get.calls_report (ms). FACTS-calls §1.3: no source states the lag
   * behind notifications, but `include_ongoing_calls` and the real-time `get.visits` suggest there is one.
   */
  callsReportLagMs: number;
}

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

export function createDataApiSandbox() {
  let settings: DataApiSettings = { ...DEFAULTS };
  const tokens = new Map<string, { expireAt: number; calls: number }>();
  const data = { "get.visitor_sessions_report": [] as Row[], "get.communications_report": [] as Row[], "get.calls_report": [] as Row[], "get.campaign_daily_stat": [] as Row[] };
  /** When each call row was seeded: it shows in the report only `callsReportLagMs` later. */
  const seededAt = new WeakMap<Row, number>();
  /** authorizedCalls: calls a token (or key) was accepted for; with tokenMaxCalls it bounds how many logins were needed. */
  const stats = { requests: 0, logins: 0, authorizedCalls: 0, methods: {} as Record<string, number>, errors: {} as Record<string, number> };
  let minute = { start: Date.now(), used: 0 };
  let day = { start: Date.now(), used: 0 };
  let faultState = 11;

  const nextRandom = () => {
    faultState = (faultState * 1103515245 + 12345) % 2 ** 31;
    return faultState / 2 ** 31;
  };

  function limits() {
    const now = Date.now();
    return {
      day_limit: settings.dayLimit,
      day_remaining: Math.max(0, settings.dayLimit - day.used),
      day_reset: Math.ceil((day.start + 86_400_000 - now) / 1000),
      minute_limit: settings.minuteLimit,
      minute_remaining: Math.max(0, settings.minuteLimit - minute.used),
      minute_reset: Math.max(1, Math.ceil((minute.start + 60_000 - now) / 1000)),
    };
  }

  function authenticate(params: Params): void {
    const token = params.access_token;
    if (typeof token !== "string" || token === "") throw new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field: "access_token" });
    if (settings.apiKeys.includes(token)) {
      stats.authorizedCalls += 1;
      return;
    }
    const session = tokens.get(token);
    if (!session) throw new RpcError(-32001, "access_token_invalid", "Access token is invalid");
    session.calls += 1;
    if (Date.now() >= session.expireAt || (settings.tokenMaxCalls > 0 && session.calls > settings.tokenMaxCalls)) {
      throw new RpcError(-32001, "access_token_expired", "Access token has been expired");
    }
    stats.authorizedCalls += 1;
  }

  function chargeLimit(): void {
    const now = Date.now();
    if (now - minute.start >= 60_000) minute = { start: now, used: 0 };
    if (now - day.start >= 86_400_000) day = { start: now, used: 0 };
    if (minute.used >= settings.minuteLimit) {
      throw new RpcError(-32029, "limit_exceeded", `Limit per minute has been exceeded. Value of current limit per minute is ${settings.minuteLimit}`, {
        params: { limit_type: "minute", limit_max_value: settings.minuteLimit },
      });
    }
    minute.used += 1;
    day.used += 1;
  }

  /** Every field a filter names must be filterable in that report (FACTS.md §1.5: else filter_prohibited). */
  function checkFilterable(filter: unknown, filterable: string[] | undefined): void {
    if (filter === undefined || filter === null || !filterable) return;
    const f = filter as { filters?: unknown[]; field?: string };
    if (Array.isArray(f.filters)) {
      for (const child of f.filters) checkFilterable(child, filterable);
      return;
    }
    if (!filterable.includes(String(f.field))) throw new RpcError(-32602, "filter_prohibited", "Filtering by this field is prohibited", { field: `filter.${String(f.field)}` });
  }

  function matches(row: Row, filter: unknown): boolean {
    if (filter === undefined || filter === null) return true;
    const f = filter as { filters?: unknown[]; condition?: string; field?: string; operator?: string; value?: unknown };
    if (Array.isArray(f.filters)) {
      const results = f.filters.map((child) => matches(row, child));
      return f.condition === "or" ? results.some(Boolean) : results.every(Boolean);
    }
    const actual = row[f.field ?? ""];
    switch (f.operator) {
      case "=":
        return String(actual) === String(f.value);
      case "!=":
        return String(actual) !== String(f.value);
      case "in":
        return Array.isArray(f.value) && f.value.map(String).includes(String(actual));
      default:
        throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: "filter.operator", value: String(f.operator) });
    }
  }

  function report(method: keyof typeof data, params: Params) {
    const spec = REPORTS[method];
    if (!spec) throw new RpcError(-32601, "method_not_found", "The method does not exist");
    for (const name of ["date_from", "date_till"]) {
      if (typeof params[name] !== "string") throw new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field: name });
      if (!DATE_TIME.test(params[name] as string)) throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: name, value: String(params[name]) });
    }
    const from = params.date_from as string;
    const till = params.date_till as string;
    if (Date.parse(`${till}Z`) - Date.parse(`${from}Z`) > MAX_INTERVAL_MS || beyondThreeMonths(from, till)) {
      throw new RpcError(-32602, "date_interval_limit_reached", "Max value of requested date interval is 3 months");
    }
    const fields = params.fields === undefined ? spec.defaults : params.fields;
    if (!Array.isArray(fields)) throw new RpcError(-32602, "data_type_error", "Data supplied is of wrong type", { field: "fields" });
    const unknown = fields.find((f) => !spec.fields.includes(String(f)) && !spec.defaults.includes(String(f)));
    if (unknown !== undefined) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: `fields.${String(unknown)}` });
    const limit = Number(params.limit ?? 1000);
    const offset = Number(params.offset ?? 0);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: "limit" });
    if (!Number.isInteger(offset) || offset < 0 || offset > 100_000) throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: "offset" });

    if (method === "get.campaign_daily_stat" && typeof params.site_id !== "number") {
      throw new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field: "site_id" });
    }
    checkFilterable(params.filter, spec.filterable);
    const visibleFrom = Date.now() - settings.callsReportLagMs;
    let rows = data[method].filter((row) => {
      if (method === "get.calls_report" && (seededAt.get(row) ?? 0) > visibleFrom) return false;
      // A day-only column ("date") stands for that day's midnight.
      const t = spec.time === "date" ? `${String(row.date ?? "")} 00:00:00` : String(row[spec.time] ?? "");
      if (method === "get.campaign_daily_stat" && Number(row.site_id) !== params.site_id) return false;
      return t >= from && t <= till && matches(row, params.filter);
    });
    if (settings.syntheticVisitors && method === "get.visitor_sessions_report" && rows.length === 0) {
      const wanted = (params.filter as { field?: string; value?: unknown } | undefined)?.field === "visitor_id" ? Number((params.filter as { value: unknown }).value) : Number.NaN;
      if (Number.isFinite(wanted)) rows = syntheticSessions(wanted, new Date()).filter((r) => String(r.date_time) >= from && String(r.date_time) <= till);
    }
    rows.sort((a, b) => String(a[spec.time]).localeCompare(String(b[spec.time])));
    const page = rows.slice(offset, offset + limit).map((row) => Object.fromEntries(fields.map((f) => [f, row[String(f)] ?? null])));
    return { data: page, metadata: { total_items: rows.length, limits: limits() } };
  }

  function dispatch(method: string, params: Params): unknown {
    if (method === "login.user") {
      if (params.login !== settings.login || params.password !== settings.password) throw new RpcError(-32001, "auth_error", "Login or password is wrong");
      stats.logins += 1;
      const token = randomBytes(24).toString("hex");
      const expireAt = Date.now() + settings.tokenLifetimeSeconds * 1000;
      tokens.set(token, { expireAt, calls: 0 });
      return { data: { access_token: token, expire_at: Math.floor(expireAt / 1000), app_id: 1 } };
    }
    authenticate(params);
    if (method === "logout.user") {
      tokens.delete(String(params.access_token));
      return { data: {} };
    }
    chargeLimit();
    if (method in data) return report(method as keyof typeof data, params);
    if (method === "get.employees") {
      const rows = SANDBOX_EMPLOYEES.filter((e) => matches(e as unknown as Row, params.filter));
      const fields = Array.isArray(params.fields) ? params.fields.map(String) : ["id", "full_name", "email"];
      return { data: rows.map((e) => Object.fromEntries(fields.map((f) => [f, (e as unknown as Row)[f] ?? null]))), metadata: { total_items: rows.length, limits: limits() } };
    }
    throw new RpcError(-32601, "method_not_found", "The method does not exist");
  }

  const app = new Hono();
  app.post("/comagic/dataapi/v2.0", async (c) => {
    stats.requests += 1;
    let request: { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
    const fail = (id: unknown, error: RpcError) => {
      stats.errors[error.mnemonic] = (stats.errors[error.mnemonic] ?? 0) + 1;
      return c.json({ jsonrpc: "2.0", id: id ?? null, error: { code: error.code, message: error.message, data: { mnemonic: error.mnemonic, ...error.extra, metadata: { limits: limits() } } } });
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
      const limitsNow = limits();
      const reset = settings.limitResetSeconds ?? limitsNow.minute_reset;
      stats.errors.limit_exceeded = (stats.errors.limit_exceeded ?? 0) + 1;
      return c.json({
        jsonrpc: "2.0",
        id: request.id,
        error: {
          code: -32029,
          message: "Limit per minute has been exceeded. Value of current limit per minute is 150",
          data: { mnemonic: "limit_exceeded", metadata: { limits: { ...limitsNow, minute_remaining: 0, minute_reset: reset } } },
        },
      });
    }
    try {
      return c.json({ jsonrpc: "2.0", id: request.id, result: dispatch(method, (request.params ?? {}) as Params) });
    } catch (error) {
      if (error instanceof RpcError) return fail(request.id, error);
      return fail(request.id, new RpcError(-32603, "internal_error", "Internal error, contact the support service"));
    }
  });

  app.post("/_sandbox/comagic/settings", async (c) => {
    settings = { ...settings, ...((await c.req.json()) as Partial<DataApiSettings>) };
    return c.json({ ok: true, settings: { ...settings, password: "***" } });
  });
  app.post("/_sandbox/comagic/reset", (c) => {
    settings = { ...DEFAULTS };
    tokens.clear();
    for (const rows of Object.values(data)) rows.length = 0;
    Object.assign(stats, { requests: 0, logins: 0, authorizedCalls: 0, methods: {}, errors: {} });
    minute = { start: Date.now(), used: 0 };
    return c.json({ ok: true });
  });
  /** Seeds report rows: `{"visitor_sessions": [...], "communications": [...], "calls": [...], "campaign_daily_stat": [...]}`. */
  app.post("/_sandbox/comagic/data", async (c) => {
    const body = (await c.req.json()) as { visitor_sessions?: Row[]; communications?: Row[]; calls?: Row[]; campaign_daily_stat?: Row[] };
    data["get.campaign_daily_stat"].push(...(body.campaign_daily_stat ?? []));
    data["get.visitor_sessions_report"].push(...(body.visitor_sessions ?? []));
    data["get.communications_report"].push(...(body.communications ?? []));
    for (const row of body.calls ?? []) seededAt.set(row, Date.now());
    data["get.calls_report"].push(...(body.calls ?? []));
    return c.json({ ok: true });
  });
  app.get("/_sandbox/comagic/stats", (c) => c.json(stats));

  /** A call CoMagic itself recorded (the Call API's), added to get.calls_report like a seeded one. */
  const recordCall = (row: Row) => {
    seededAt.set(row, Date.now());
    data["get.calls_report"].push(row);
  };

  return { app, recordCall, setSettings: (s: Partial<DataApiSettings>) => (settings = { ...settings, ...s }), credentials: () => ({ login: settings.login, password: settings.password }) };
}
