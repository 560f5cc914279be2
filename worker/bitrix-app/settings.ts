/*
 * The app's settings page, as use cases: which settings a portal's administrator may change there (never the
 * portal's address, its member_id or the deployment's own settings), what each step of the checklist says, and the
 * checks the page runs (the CoMagic account, a page of the site, GA4's events on Google's validation server). Saving
 * goes through portal-config.ts `savePortal`, so the page is held to the same schema as env and `PUT /admin/portals`.
 */
import { userRows } from "../bitrix/users";
import { loadPipelines } from "../bitrix/pipelines";
import * as z from "zod";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { CoMagicError } from "../comagic/data-api";
import type { SettingsMessages } from "../i18n/settings";
import type { BitrixClient } from "../bitrix/client";
import { type KvCache, kvJson } from "../storage/kv-json";
import { type EmployeeMatch, matchEmployees, type PortalUser, userNames } from "../domain/employee-match";
import { FunnelShapeError, type SalesFunnel, salesFunnelFromPipeline } from "../domain/deal-history";
import { ensureSalesFunnel } from "../comagic/deals-upload";
import type { Config, ConfigProblem } from "../config";
import type { ConversionGoal } from "../domain/offline-conversions";
import { ga4EventNameSchema, ga4SamplePayload } from "../domain/ga4-events";
import { Ga4Error, ga4Client, ga4MeasurementIdSchema } from "../ga4/client";

/** CoMagic's platforms and their APIs (comagic/FACTS.md §1.1, §4: one account opens only its own platform's). */
export const PLATFORMS = {
  comagic: { data: "https://dataapi.comagic.ru/v2.0", call: "https://callapi.comagic.ru/v4.0" },
  uis: { data: "https://dataapi.uiscom.ru/v2.0", call: "https://callapi.uiscom.ru/v4.0" },
  callgear: { data: "https://dataapi.callgear.com/v2.0", call: "https://callapi.callgear.com/v4.0" },
} as const;
export type Platform = keyof typeof PLATFORMS | "local" | "custom";

/** What the page may change, by the settings' env names; secrets are written only when given, never read back. */
export const PAGE_SETTINGS = [
  "COMAGIC_API_TOKEN",
  "COMAGIC_LOGIN",
  "COMAGIC_PASSWORD",
  "COMAGIC_TIMEZONE",
  "ALLOWED_ORIGINS",
  "DEFAULT_RESPONSIBLE_ID",
  "LOST_CALL_RESPONSIBLE_ID",
  "COMAGIC_VIRTUAL_NUMBER",
  "CALL_COUNTRIES",
  "CALL_DAILY_LIMIT_PER_USER",
  "CALL_DAILY_LIMIT",
  "CRM_LANGUAGE",
  "DEAL_CATEGORY_ID",
  "DEAL_STAGE_ID",
  // Closing the loop (issue #25): deals into CoMagic, conversions into Yandex Metrica and GA4.
  "COMAGIC_DEALS",
  "COMAGIC_CURRENCY",
  "METRICA_COUNTER_ID",
  "METRICA_TOKEN",
  "METRICA_GOAL_QUALIFIED",
  "METRICA_GOAL_WON",
  "QUALIFIED_LEAD_STATUS",
  "GA4_MEASUREMENT_ID",
  "GA4_API_SECRET",
  "GA4_EVENT_QUALIFIED",
  "GA4_EVENT_WON",
] as const;
export const PAGE_SECRETS = ["COMAGIC_API_TOKEN", "COMAGIC_PASSWORD", "METRICA_TOKEN", "GA4_API_SECRET"] as const;

const text = z.string().trim().max(2000);
const numericId = z.string().regex(/^\d{1,12}$/);
export const pageChangeSchema = z.object({
  platform: z.enum(["comagic", "uis", "callgear", "local", "custom"]).optional(),
  settings: z.partialRecord(z.enum(PAGE_SETTINGS), text).default({}),
  /** The managers' table: each CoMagic employee given a Bitrix24 user (COMAGIC_EMPLOYEES), when the page had one. */
  employees: z
    .array(z.object({ employeeId: numericId, userId: numericId }))
    .max(1000)
    .optional(),
});
export type PageChange = z.infer<typeof pageChangeSchema>;

/** The Data API and Call API addresses a platform choice means; `local` is the deployment's own sandbox (ALLOW_LOOPBACK_HTTP). */
export function platformUrls(platform: Platform, local: { data: string; call: string } | null): { data: string; call: string } | null {
  if (platform === "local") return local;
  if (platform === "custom") return null;
  return PLATFORMS[platform];
}

/** The platform a portal's Data API address belongs to. */
export function platformOf(dataApiUrl: string, local: { data: string } | null): Platform {
  for (const [name, urls] of Object.entries(PLATFORMS)) if (urls.data === dataApiUrl) return name as Platform;
  return local && local.data === dataApiUrl ? "local" : "custom";
}

/**
 * The settings a page change writes, by env name (null removes one): an empty secret keeps the stored one, an empty
 * plain setting removes it, a platform sets both API addresses.
 */
export function settingsOfChange(change: PageChange, local: { data: string; call: string } | null): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [name, value] of Object.entries(change.settings)) {
    if (value === undefined) continue;
    const secret = (PAGE_SECRETS as readonly string[]).includes(name);
    if (secret && value === "") continue;
    out[name] = value === "" ? null : value;
  }
  const urls = change.platform ? platformUrls(change.platform, local) : null;
  if (urls) {
    out.COMAGIC_DATA_API_URL = urls.data;
    out.COMAGIC_CALL_API_URL = urls.call;
  }
  return out;
}

/** "set, ends in …7f": enough to tell two keys apart, never enough to use one. */
export function secretHint(value: string | undefined, m: SettingsMessages): string {
  if (!value) return m.secretUnset;
  return m.secretSet(value.length > 8 ? value.slice(-2) : "");
}

/** The account as a successful check reads it. */
export interface ComagicAccount {
  name: string | null;
  timeZone: string | null;
  pointsLeft: number | null;
}

const accountRow = z.object({ name: z.string().nullish(), timezone: z.string().nullish() }).loose();
// FACTS.md §1.1 names get.account's `timezone`; a one-row array is what clients of the platform read, an object is read too.
const accountAnswer = z.union([z.array(accountRow).transform((rows) => rows[0] ?? null), accountRow]);

/**
 * Asks the Data API once (one point, FACTS.md §1.4: every read costs one): `get.account` proves the credentials, the
 * platform and the allow-list, names the account and its time zone, and its `metadata.limits` say the points left.
 */
export async function checkComagic(dataApi: CoMagicRpcClient | null): Promise<ComagicAccount | Error> {
  if (!dataApi) return new Error("no credentials");
  try {
    const answer = await dataApi.call("get.account", {});
    const account = accountAnswer.safeParse(answer.data).data ?? null;
    const limits = (answer.metadata as { limits?: { day_remaining?: unknown } }).limits;
    return { name: account?.name ?? null, timeZone: account?.timezone ?? null, pointsLeft: typeof limits?.day_remaining === "number" ? limits.day_remaining : null };
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** What a failed check says, in words: the allow-list and credentials get the fix, anything else CoMagic's own words. */
export function checkRefusal(outcome: CoMagicError | Error, m: SettingsMessages): { text: string; mnemonic: string | null } {
  if (!(outcome instanceof CoMagicError)) return { text: outcome.message === "no credentials" ? m.comagic.noCredentials : m.comagic.unreachable, mnemonic: null };
  const why =
    outcome.mnemonic === "ip_not_whitelisted"
      ? m.comagic.ipNotWhitelisted
      : ["auth_error", "invalid_access_token", "access_token_expired"].includes(outcome.mnemonic)
        ? m.comagic.authError
        : outcome.transient
          ? m.comagic.unreachable
          : outcome.message;
  return { text: m.comagic.refused(outcome.mnemonic, why), mnemonic: outcome.mnemonic };
}

/** Whether a page's HTML loads this portal's snippet: `/s/<portal>.js` (or `/snippet.js` for the default portal) on this worker. */
export function pageHasSnippet(html: string, workerOrigin: string, portal: string, defaultPortal: boolean): boolean {
  const paths = [`/s/${portal}.js`, ...(defaultPortal ? ["/snippet.js"] : [])];
  const sources = [...html.matchAll(/<script\b[^>]*\bsrc\s*=\s*["']?([^"'\s>]+)/gi)].map((m) => m[1] ?? "");
  return sources.some((src) => {
    try {
      const url = new URL(src, "https://page.invalid/");
      return url.origin === workerOrigin && paths.includes(url.pathname);
    } catch {
      return false;
    }
  });
}

/** The managers' step: CoMagic's employees each with the Bitrix24 user proposed for them, and the portal's users to choose from. */
export interface Managers {
  matches: EmployeeMatch[];
  users: PortalUser[];
}

const employeeRows = z.array(z.object({ id: z.union([z.number(), z.string()]).transform(String), full_name: z.string().nullish(), email: z.string().nullish() }).loose());
const employeeList = z.array(z.object({ id: z.string(), fullName: z.string(), email: z.string().nullable() }));
const EMPLOYEES_KEY = "settings-employees:v1";
const EMPLOYEES_CACHE_SECONDS = 600;
/** user.get answers 50 users a page (Bitrix24's list size); a portal's first 500 active users are offered. */
const USER_PAGES = 10;

/**
 * Reads CoMagic's employees (get.employees: one point) and the portal's active users (user.get, with the app's
 * `user_basic` scope for their emails), and proposes a user for each employee (domain/employee-match.ts).
 */
export async function loadManagers(deps: { dataApi: CoMagicRpcClient; bitrix: BitrixClient; cache: KvCache | null }, saved: Readonly<Record<string, string | number>>): Promise<Managers> {
  // A page opened again (after each save) reads the employees once in ten minutes: points are few on small accounts.
  const cache = deps.cache ? kvJson(deps.cache, employeeList) : null;
  let employees = await cache?.get(EMPLOYEES_KEY);
  if (!employees) {
    const { data } = await deps.dataApi.call("get.employees", { fields: ["id", "full_name", "email"] });
    employees = (employeeRows.safeParse(data).data ?? []).map((e) => ({ id: e.id, fullName: e.full_name ?? "", email: e.email ?? null }));
    await cache?.put(EMPLOYEES_KEY, employees, EMPLOYEES_CACHE_SECONDS);
  }
  const users: (PortalUser & { names: string[] })[] = [];
  for (let page = 0; page < USER_PAGES; page++) {
    const rows = userRows.safeParse(await deps.bitrix.call("user.get", { FILTER: { ACTIVE: true }, start: page * 50 })).data ?? [];
    for (const u of rows) {
      if (users.some((known) => known.id === u.ID)) continue;
      const names = userNames(u.NAME, u.LAST_NAME);
      users.push({ id: u.ID, name: names[0] ? `${u.NAME ?? ""} ${u.LAST_NAME ?? ""}`.trim() : `#${u.ID}`, email: u.EMAIL ?? null, names });
    }
    if (rows.length < 50) break;
  }
  return { matches: matchEmployees(employees, users, saved), users: users.map(({ names: _names, ...user }) => user) };
}

/** A deal funnel and its stages still in progress: where a new deal may start. */
export interface Funnel {
  id: string;
  name: string;
  stages: { id: string; name: string }[];
}

/** The portal's deal funnels and each one's stages in progress, in order: where a new deal may start. */
export async function loadFunnels(bitrix: BitrixClient): Promise<Funnel[]> {
  return (await loadPipelines(bitrix)).map((pipeline) => ({
    id: pipeline.categoryId,
    name: pipeline.name,
    stages: pipeline.stages
      .filter((stage) => stage.semantics === "P")
      .sort((a, b) => a.sort - b.sort)
      .map((stage) => ({ id: stage.id, name: stage.name })),
  }));
}

/** What making the funnels said, per pipeline: made, brought up to date, refused (analytics off), or a pipeline CoMagic cannot take. */
export type FunnelReport = { pipeline: string; outcome: "created" | "updated" | "not_connected" | "unfit"; detail: string };

/**
 * Makes (or completes) one CoMagic sales funnel per Bitrix24 deal pipeline (comagic/deals-upload.ts): what the
 * settings page's button does, before any deal is uploaded (FACTS-loop §1.1–§1.2).
 */
export async function makeSalesFunnels(deps: { bitrix: BitrixClient; dataApi: CoMagicRpcClient }): Promise<FunnelReport[]> {
  const reports: FunnelReport[] = [];
  for (const loaded of await loadPipelines(deps.bitrix)) {
    // CoMagic's funnel needs a name; Bitrix24's general one may have none.
    const pipeline = { ...loaded, name: loaded.name || "Bitrix24" };
    let funnel: SalesFunnel;
    try {
      funnel = salesFunnelFromPipeline(pipeline);
    } catch (error) {
      if (!(error instanceof FunnelShapeError)) throw error;
      reports.push({ pipeline: pipeline.name, outcome: "unfit", detail: error.message });
      continue;
    }
    const outcome = await ensureSalesFunnel(deps.dataApi, funnel);
    if (outcome.status === "not_connected") {
      // The account refuses every funnel alike: one answer says it.
      reports.push({ pipeline: pipeline.name, outcome: "not_connected", detail: outcome.mnemonic });
      break;
    }
    reports.push({ pipeline: pipeline.name, outcome: outcome.status, detail: outcome.addedStages.join(", ") });
  }
  return reports;
}

/** A lead status a lead may be moved to on its way (not converted, not junk): where it counts as "qualified". */
export interface LeadStatus {
  id: string;
  name: string;
}

const statusRows = z.array(z.object({ STATUS_ID: z.string(), NAME: z.string(), SORT: z.coerce.number().optional(), SEMANTICS: z.string().nullish() }).loose());

/**
 * The portal's lead statuses still in progress, in order (crm.status.list ENTITY_ID "STATUS", one call): the choices
 * for QUALIFIED_LEAD_STATUS. A converted lead (semantics S) made a deal, which counts already; a junk one (F) never does.
 */
export async function loadLeadStatuses(bitrix: BitrixClient): Promise<LeadStatus[]> {
  const rows = statusRows.safeParse(await bitrix.call("crm.status.list", { filter: { ENTITY_ID: "STATUS" } })).data ?? [];
  return rows
    .filter((row) => row.SEMANTICS !== "S" && row.SEMANTICS !== "F")
    .sort((a, b) => (a.SORT ?? 0) - (b.SORT ?? 0))
    .map((row) => ({ id: row.STATUS_ID, name: row.NAME }));
}

type Ga4Settings = Pick<Config, "GA4_MEASUREMENT_ID" | "GA4_API_SECRET" | "GA4_EVENT_QUALIFIED" | "GA4_EVENT_WON">;

/** GA4 as a save would leave it, to be checked on Google's validation server before it is stored. */
export interface Ga4Check {
  measurementId: string;
  apiSecret: string;
  names: Record<ConversionGoal, string | null>;
}

/**
 * What a page change asks Google's validation server to look at: GA4 as the change leaves it (its measurement ID, API
 * secret and event names), when that differs from the portal's current GA4 and GA4 stays on (both the ID and the
 * secret). Null when there is nothing to check: GA4 off, unchanged, or a value the settings' own schema refuses
 * (savePortal then names it, with its reason). An emptied event name falls back to its default, which is not checked.
 */
export function ga4CheckOf(change: Readonly<Record<string, string | null>>, current: Ga4Settings): Ga4Check | null {
  const after = <K extends keyof Ga4Settings>(name: K): string | null => (name in change ? (change[name] ?? null) : (current[name] ?? null));
  const measurementId = ga4MeasurementIdSchema.safeParse(after("GA4_MEASUREMENT_ID"));
  const apiSecret = after("GA4_API_SECRET");
  if (!measurementId.success || !apiSecret) return null;
  const name = (setting: "GA4_EVENT_QUALIFIED" | "GA4_EVENT_WON") => {
    const value = after(setting);
    return value === null ? null : (ga4EventNameSchema.safeParse(value).data ?? undefined);
  };
  const names = { qualified: name("GA4_EVENT_QUALIFIED"), won: name("GA4_EVENT_WON") };
  if (names.qualified === undefined || names.won === undefined || (names.qualified === null && names.won === null)) return null;
  const check: Ga4Check = { measurementId: measurementId.data, apiSecret, names: { qualified: names.qualified, won: names.won } };
  const unchanged =
    check.measurementId === current.GA4_MEASUREMENT_ID &&
    check.apiSecret === current.GA4_API_SECRET &&
    check.names.qualified === current.GA4_EVENT_QUALIFIED &&
    check.names.won === current.GA4_EVENT_WON;
  return unchanged ? null : check;
}

/**
 * Sends one sample of the events these settings make (a qualified lead, a won deal with revenue) to GA4's validation
 * server (`/debug/mp/collect`, FACTS-loop §4): its messages are the save's problems, in words. That server checks the
 * request's shape only, never the API secret or whether the measurement ID exists (ga4/client.ts): the page says so.
 */
export async function checkGa4(check: Ga4Check, deps: { baseUrl: string; now: number; fetch?: typeof fetch }, m: SettingsMessages): Promise<ConfigProblem[]> {
  try {
    const client = ga4Client({ measurementId: check.measurementId, apiSecret: check.apiSecret, baseUrl: deps.baseUrl, ...(deps.fetch ? { fetch: deps.fetch } : {}) });
    const outcome = await client.validate(ga4SamplePayload(check.names, deps.now));
    if (outcome.ok) return [];
    // Google's words name the event or field they mean ("Event at index: [0] has invalid name [x] …").
    return outcome.messages.map((message) => ({ setting: "GA4", problem: m.loop.ga4.refused(message.validationCode ?? "?", message.description) }));
  } catch (error) {
    if (!(error instanceof Ga4Error)) throw error;
    // The client refuses a secret of a shape Google never makes (spaces, over 256 characters); its words never hold the value.
    if (error.type === "invalid_parameter") return [{ setting: "GA4_API_SECRET", problem: error.message }];
    return [{ setting: "GA4", problem: error.transient ? m.loop.ga4.unreachable : m.loop.ga4.answered(error.status) }];
  }
}
