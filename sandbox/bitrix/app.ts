import { Hono, type Context } from "hono";
import { parse as parseQuery } from "qs";
import * as z from "zod";
import { FaultInjector, type FaultSettings } from "./faults";
import { createOAuthApp, type AppSettings } from "./oauth-app";
import { LeakyBucket } from "./leaky-bucket";
import { COMAGIC_MEDIA_HOST, createMediaHost } from "../media-host";
import { bitrixDate, ControlError, Portal, RestError, type EntityName, type RecordFetch } from "./portal";
import { renderLeadsPage } from "./page";

export interface BitrixSandboxOptions {
  userId?: string;
  webhookCode?: string;
  drainPerSecond?: number;
  burst?: number;
  app?: Partial<AppSettings>;
  /** Where the portal is served: "" (the root portal) or "/p/<name>"; its absolute links include it. */
  basePath?: string;
}

const BATCH_MAX_COMMANDS = 50;
// Bitrix24 parses nested query strings deeper than qs's default of 5 (e.g. fields[PHONE][0][VALUE]).
const QS_OPTIONS = { depth: 20, arrayLimit: 1000, parameterLimit: 10_000 };

type Params = Record<string, unknown>;

function timeEnvelope(startedAt: number) {
  const finish = Date.now();
  return {
    start: startedAt / 1000,
    finish: finish / 1000,
    duration: (finish - startedAt) / 1000,
    processing: (finish - startedAt) / 1000,
    date_start: bitrixDate(new Date(startedAt)),
    date_finish: bitrixDate(new Date(finish)),
    operating_reset_at: Math.floor(startedAt / 1000) + 600,
    operating: 0,
  };
}

async function readParams(c: Context): Promise<Params> {
  const url = new URL(c.req.url);
  const fromQuery = parseQuery(url.search.slice(1), QS_OPTIONS) as Params;
  const text = await c.req.text();
  if (text.trim() === "") return fromQuery;
  const type = c.req.header("content-type") ?? "";
  if (type.includes("json") || /^\s*[{[]/.test(text)) {
    try {
      const body = JSON.parse(text) as unknown;
      if (body && typeof body === "object" && !Array.isArray(body)) return { ...fromQuery, ...(body as Params) };
    } catch {
      throw new RestError(400, "ERROR_UNEXPECTED_ANSWER", "Invalid JSON body");
    }
  }
  return { ...fromQuery, ...(parseQuery(text, QS_OPTIONS) as Params) };
}

/** A moment as a control body gives it: ISO 8601 with a zone (`Z` or an offset), never a local time. */
const instant = z.iso.datetime({ offset: true }).transform((text) => new Date(text));
const currencyRow = z.strictObject({
  CURRENCY: z.string().regex(/^[A-Z]{3}$/, "a three-letter code"),
  // Any text: a portal's rate that does not parse is what a reader must survive.
  AMOUNT: z.string(),
  AMOUNT_CNT: z.string().optional(),
  BASE: z.enum(["Y", "N"]).optional(),
  SORT: z.string().optional(),
  FULL_NAME: z.string().optional(),
  LID: z.string().optional(),
  FORMAT_STRING: z.string().optional(),
  DEC_POINT: z.string().optional(),
  THOUSANDS_SEP: z.string().nullable().optional(),
  DECIMALS: z.string().optional(),
  DATE_UPDATE: z.string().nullable().optional(),
});
const CONTROL_BODIES = {
  currencies: z.strictObject({ currencies: z.array(currencyRow).min(1) }),
  stageHistory: z.strictObject({
    ownerId: z.coerce.number().int().positive(),
    stageId: z.string().min(1),
    at: instant,
    typeId: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(5)]).optional(),
  }),
  stageHistoryShape: z.strictObject({ shape: z.enum(["items", "array"]) }),
  dealDates: z.strictObject({ DATE_CREATE: instant.optional(), DATE_MODIFY: instant.optional() }).refine((dates) => dates.DATE_CREATE || dates.DATE_MODIFY, "name DATE_CREATE, DATE_MODIFY or both"),
};

/**
 * A control route whose body `schema` checks: 400 `{error}` with zod's account of a bad body, or with the portal's
 * refusal (ControlError: a deal that does not exist, two base currencies).
 */
function controlRoute<S extends z.ZodType>(schema: S, run: (body: z.output<S>, c: Context) => Response | Promise<Response>) {
  return async (c: Context) => {
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      return c.json({ error: "the body is not JSON" }, 400);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) return c.json({ error: z.prettifyError(parsed.error) }, 400);
    try {
      return await run(parsed.data, c);
    } catch (error) {
      if (error instanceof ControlError) return c.json({ error: error.message }, 400);
      throw error;
    }
  };
}

const REFERENCE = /\$(result|error|next|total|time)\[([^\]]*)\]((?:\[[^\]]*\])*)/g;

/**
 * What Bitrix24 does to every decoded value of a batch command (FACTS.md §2.11, rest_util.php
 * processBatchElement): `$result[key][field]…` and its `$error`, `$next`, `$total`, `$time` kin are replaced by
 * earlier commands' values. A whole-value reference keeps the value's type; an embedded one is replaced only
 * by a string or number.
 */
function substituteReferences(value: unknown, scope: Record<string, Params>): unknown {
  if (Array.isArray(value)) return value.map((v) => substituteReferences(v, scope));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteReferences(v, scope)]));
  if (typeof value !== "string") return value;
  const lookup = (kind: string, key: string, path: string): unknown => {
    let current: unknown = scope[kind]?.[key];
    for (const [, part] of path.matchAll(/\[([^\]]*)\]/g)) current = current && typeof current === "object" ? (current as Params)[part ?? ""] : undefined;
    return current;
  };
  const whole = new RegExp(`^${REFERENCE.source}$`).exec(value);
  if (whole) {
    const found = lookup(whole[1] ?? "", whole[2] ?? "", whole[3] ?? "");
    return found === undefined ? value : found;
  }
  return value.replace(REFERENCE, (match, kind: string, key: string, path: string) => {
    const found = lookup(kind, key, path);
    return typeof found === "string" || typeof found === "number" ? String(found) : match;
  });
}

/** Bitrix24 REST over an inbound webhook, with its envelopes, limits and quirks, plus a control API. */
export function createBitrixSandbox(options: BitrixSandboxOptions = {}) {
  const userId = options.userId ?? "1";
  const webhookCode = options.webhookCode ?? "sandboxcode";
  const portal = new Portal();
  const bucket = new LeakyBucket(options.drainPerSecond ?? 2, options.burst ?? 50);
  const faults = new FaultInjector();
  // telephonyRequests: HTTP requests that ran a telephony.* method (benches tell call registration from lead writes).
  const stats = { httpRequests: 0, rejectedByRateLimit: 0, telephonyRequests: 0, methods: {} as Record<string, number> };
  const basePath = options.basePath ?? "";
  const oauth = createOAuthApp(
    { clientId: "local.sandbox-app", clientSecret: "sandbox-app-secret", memberId: "sandbox-member-0001", tokenLifetimeSeconds: 3600, ...options.app },
    { users: portal.users, basePath },
  );
  const media = createMediaHost();

  /** How the portal downloads a RECORD_URL: CoMagic's media host from its stand-in (no internet here), the rest over HTTP. */
  const fetchRecord: RecordFetch = async (url, signal) => {
    const link = new URL(url);
    if (link.hostname === COMAGIC_MEDIA_HOST) return await media.app.request(`/_sandbox/media/rec${link.pathname}`, { signal });
    return await fetch(link, { redirect: "follow", signal });
  };

  /** One REST method, as a webhook (userId null) or as the app for a user; `deadline` ends the request's time (FACTS.md §4.1). */
  const callMethod = async (method: string, params: Params, appUserId: number | null, token: unknown, deadline: number) =>
    oauth.appMethod(method, params, appUserId, oauth.appOf(token)) ??
    (await portal.callAsync(method, params, { webhook: appUserId === null, userId: appUserId ?? Number(userId) }, { fetchRecord, deadline }));

  const count = (method: string) => {
    stats.methods[method] = (stats.methods[method] ?? 0) + 1;
  };

  /** Sub-calls run one after another, as Bitrix24 runs them: their downloads add up within the one request's time. */
  async function runBatch(params: Params, appUserId: number | null, methods: string[], token: unknown, deadline: number) {
    const rawCmd = params.cmd;
    const cmd: Record<string, unknown> = Array.isArray(rawCmd) ? Object.fromEntries(rawCmd.map((v, i) => [String(i), v])) : ((rawCmd ?? {}) as Params);
    const entries = Object.entries(cmd);
    if (entries.length > BATCH_MAX_COMMANDS) throw new RestError(400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded");
    const halt = ["1", "true", "Y"].includes(String(params.halt ?? "0"));
    const result: Params = {};
    const errors: Params = {};
    const totals: Params = {};
    const nexts: Params = {};
    const times: Params = {};
    for (const [key, value] of entries) {
      const started = Date.now();
      const text = String(value);
      const q = text.indexOf("?");
      const method = (q < 0 ? text : text.slice(0, q)).replace(/\.json$/, "");
      count(method);
      methods.push(method);
      try {
        if (method === "batch") throw new RestError(405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage");
        const parsed = q < 0 ? {} : (parseQuery(text.slice(q + 1), QS_OPTIONS) as Params);
        const out = await callMethod(method, substituteReferences(parsed, { result, error: errors, total: totals, next: nexts, time: times }) as Params, appUserId, token, deadline);
        result[key] = out.result;
        if (out.total !== undefined) totals[key] = out.total;
        if (out.next !== undefined) nexts[key] = out.next;
        times[key] = timeEnvelope(started);
      } catch (error) {
        if (!(error instanceof RestError)) throw error;
        errors[key] = { error: error.code, error_description: error.description };
        if (halt) break;
      }
    }
    // PHP serialises an empty associative array as [].
    const map = (m: Params) => (Object.keys(m).length ? m : []);
    return { result: { result: map(result), result_error: map(errors), result_total: map(totals), result_next: map(nexts), result_time: map(times) } };
  }

  const app = new Hono();

  /** Webhook calls (`/rest/<user>/<code>/<method>`) and app calls (`/rest/<method>` with `auth`). */
  const handleRest = async (c: Context, method: string, webhook: boolean) => {
    const started = Date.now();
    const fail = (error: RestError) => c.json({ error: error.code, error_description: error.description }, error.status as 400);
    if (webhook && (c.req.param("userId") !== userId || c.req.param("code") !== webhookCode)) {
      return fail(new RestError(401, "NO_AUTH_FOUND", "Wrong authorization data"));
    }
    stats.httpRequests += 1;
    if (!bucket.tryTake()) {
      stats.rejectedByRateLimit += 1;
      return fail(new RestError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests"));
    }
    let fault = faults.next();
    if (fault === "503") return fail(new RestError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests"));
    try {
      const params = await readParams(c);
      const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
      const token = params.auth ?? params.access_token ?? bearer;
      const appUserId = webhook ? null : oauth.userOf(token);
      delete params.auth;
      count(method);
      const methods = [method];
      const deadline = started + portal.requestLimitMs;
      const out = method === "batch" ? await runBatch(params, appUserId, methods, token, deadline) : await callMethod(method, params, appUserId, token, deadline);
      if (methods.some((m) => m.startsWith("telephony."))) stats.telephonyRequests += 1;
      fault = faults.targetedAt(methods) ?? fault;
      // 500 and timeout faults do the work first, then fail or answer too late: the worst case for a
      // client, which cannot tell whether its writes happened.
      if (fault === "500") return fail(new RestError(500, "INTERNAL_SERVER_ERROR", "Internal server error"));
      if (fault === "timeout") await new Promise((r) => setTimeout(r, faults.settings.delayMs));
      if (fault === "drop") {
        // @hono/node-server hands the Node request over as env.incoming: cut its socket, answer nothing.
        (c.env as { incoming?: { socket?: { destroy(): void } } } | undefined)?.incoming?.socket?.destroy();
      }
      return c.json({ ...out, time: timeEnvelope(started) });
    } catch (error) {
      if (error instanceof RestError) return fail(error);
      return fail(new RestError(500, "INTERNAL_SERVER_ERROR", "Internal server error"));
    }
  };
  app.all("/rest/:userId/:code/:method", (c) => handleRest(c, c.req.param("method").replace(/\.json$/, ""), true));
  app.all("/rest/:method", (c) => handleRest(c, c.req.param("method").replace(/\.json$/, ""), false));
  app.route("/", oauth.app);
  app.route("/", media.app);

  app.get("/_sandbox/leads", (c) => c.json(portal.snapshot()));
  /** Every CRM entity with its timeline (comments, to-dos, calls), and the telephony calls registered. */
  app.get("/_sandbox/crm", (c) =>
    c.json({ leads: portal.snapshot("lead"), deals: portal.snapshot("deal"), contacts: portal.snapshot("contact"), companies: portal.snapshot("company"), calls: portal.calls }),
  );
  /**
   * The portal's settings: `mode` (1 classic, 2 without leads), `repeatLeadMode`, `telephony` ({webhook, app}:
   * whether telephony.externalCall.* accepts a webhook, and the app's token), `inactiveUsers` (user ids an admin
   * dismissed: telephony refuses them) and `requestLimitMs` (a REST request's time, 60 s in the cloud).
   */
  app.post("/_sandbox/portal", async (c) => {
    const body = (await c.req.json()) as { mode?: 1 | 2; repeatLeadMode?: boolean; telephony?: Partial<Portal["telephony"]>; inactiveUsers?: number[]; requestLimitMs?: number };
    if (body.mode !== undefined) portal.crmMode = body.mode;
    if (body.repeatLeadMode !== undefined) portal.repeatLeadMode = body.repeatLeadMode;
    if (body.telephony) portal.telephony = { ...portal.telephony, ...body.telephony };
    if (body.inactiveUsers) portal.inactiveUsers = new Set(body.inactiveUsers.map(Number));
    if (body.requestLimitMs !== undefined) portal.requestLimitMs = body.requestLimitMs;
    return c.json({
      ok: true,
      mode: portal.crmMode,
      repeatLeadMode: portal.repeatLeadMode,
      telephony: portal.telephony,
      inactiveUsers: [...portal.inactiveUsers],
      requestLimitMs: portal.requestLimitMs,
    });
  });
  /**
   * Seeds a contact, company or deal as if made earlier by hand: `{fields, createdAt}`; a deal with `fromLead`
   * as a manager's conversion of that lead makes it (LEAD_ID is read-only to REST: FACTS-portals §2).
   */
  app.post("/_sandbox/:entity{contacts|companies|deals}", async (c) => {
    const entity = ({ contacts: "contact", companies: "company", deals: "deal" } as const)[c.req.param("entity") as "contacts" | "companies" | "deals"];
    const body = (await c.req.json()) as { fields: Params; createdAt?: string; fromLead?: number | string };
    const id = portal.add(entity, body.fields, body.createdAt ? new Date(body.createdAt) : undefined);
    if (entity === "deal" && body.fromLead !== undefined) portal.markConverted(id, String(body.fromLead));
    return c.json({ id }, 201);
  });
  app.get("/_sandbox", (c) => c.html(renderLeadsPage(portal.snapshot(), basePath)));
  app.get("/_sandbox/stats", (c) =>
    c.json({ ...stats, faultsInjected: faults.injected, userFields: portal.userFields.map((u) => u.FIELD_NAME), dealUserFields: portal.dealUserFields.map((u) => u.FIELD_NAME) }),
  );
  app.post("/_sandbox/reset", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { userFields?: boolean };
    portal.reset();
    if (body.userFields) {
      portal.userFieldsByEntity = { lead: [], deal: [], contact: [], company: [] };
    }
    bucket.reset();
    faults.configure({ rate: 0, targeted: [] });
    portal.findbycommLagMs = 0;
    portal.required = { lead: [], deal: [], contact: [], company: [] };
    portal.restRequiredCheck = false;
    faults.resetCounts();
    stats.httpRequests = 0;
    stats.rejectedByRateLimit = 0;
    stats.telephonyRequests = 0;
    stats.methods = {};
    media.reset();
    oauth.reinstall();
    return c.json({ ok: true });
  });
  /** Fault settings, plus `findbycommLagMs`: how long a written phone or email stays invisible to findbycomm. */
  app.post("/_sandbox/faults", async (c) => {
    const { findbycommLagMs, ...settings } = (await c.req.json()) as Partial<FaultSettings> & { findbycommLagMs?: number };
    faults.configure(settings);
    if (findbycommLagMs !== undefined) portal.findbycommLagMs = findbycommLagMs;
    return c.json({ ok: true, settings: faults.settings, findbycommLagMs: portal.findbycommLagMs });
  });
  app.post("/_sandbox/rate-limit", async (c) => {
    const body = (await c.req.json()) as { drainPerSecond?: number; burst?: number };
    bucket.drainPerSecond = body.drainPerSecond ?? bucket.drainPerSecond;
    bucket.burst = body.burst ?? bucket.burst;
    bucket.reset();
    return c.json({ ok: true, drainPerSecond: bucket.drainPerSecond, burst: bucket.burst });
  });
  /** Required fields as an admin sets them, and whether REST (applications) must fill them: `{fields, restCheck, entity}` (entity: lead by default). */
  app.post("/_sandbox/required-fields", async (c) => {
    const body = (await c.req.json()) as { fields?: string[]; restCheck?: boolean; entity?: EntityName };
    const entity = body.entity ?? "lead";
    portal.required[entity] = body.fields ?? portal.required[entity];
    portal.restRequiredCheck = body.restCheck ?? portal.restRequiredCheck;
    return c.json({ ok: true, entity, fields: portal.required[entity], restCheck: portal.restRequiredCheck });
  });
  /*
   * The deals' stage journal and the currencies (issue #25; crm.stagehistory.list, crm.currency.*). A named portal
   * has its own under `/p/<name>`, as for every control route here.
   */
  /** The currencies as a whole: `{currencies: [{CURRENCY, AMOUNT, AMOUNT_CNT?, BASE?, …}]}`, exactly one BASE "Y". */
  app.post(
    "/_sandbox/bitrix/currencies",
    controlRoute(CONTROL_BODIES.currencies, (body, c) => {
      portal.setCurrencies(body.currencies);
      return c.json({ ok: true, currencies: portal.currencies });
    }),
  );
  /** A late or backdated journal row for a deal: `{ownerId, stageId, at, typeId?}`; the deal's own stage stays. */
  app.post(
    "/_sandbox/bitrix/stage-history",
    controlRoute(CONTROL_BODIES.stageHistory, (body, c) => c.json({ id: portal.addStageHistory(body) }, 201)),
  );
  /** Which answer shape crm.stagehistory.list gives: `{shape: "items"}` (`result.items`, the default) or `{shape: "array"}`. */
  app.post(
    "/_sandbox/bitrix/stage-history/shape",
    controlRoute(CONTROL_BODIES.stageHistoryShape, (body, c) => {
      portal.setStageHistoryShape(body.shape);
      return c.json({ ok: true, shape: portal.stageHistoryShape });
    }),
  );
  /** A deal's dates as if made or changed then: `{DATE_CREATE?, DATE_MODIFY?}` (its creation's journal row moves too). */
  app.post(
    "/_sandbox/bitrix/deals/:id/dates",
    controlRoute(CONTROL_BODIES.dealDates, (body, c) => {
      const id = Number(c.req.param("id"));
      if (!Number.isInteger(id) || id <= 0) return c.json({ error: `a deal id is a positive integer, not ${c.req.param("id")}` }, 400);
      portal.setDealDates(id, body);
      const deal = portal.items.deal.get(id);
      return c.json({ ok: true, DATE_CREATE: deal && bitrixDate(deal.DATE_CREATE), DATE_MODIFY: deal && bitrixDate(deal.DATE_MODIFY) });
    }),
  );
  /** Seeds a lead as if made earlier by hand: `{fields, createdAt}`. */
  app.post("/_sandbox/leads", async (c) => {
    const body = (await c.req.json()) as { fields: Params; createdAt?: string };
    const id = portal.addLead(body.fields, body.createdAt ? new Date(body.createdAt) : undefined);
    return c.json({ id }, 201);
  });

  return { app, portal, bucket, faults, stats, oauth, webhookPath: `${basePath}/rest/${userId}/${webhookCode}/` };
}
