import { formatComagicDateTime } from "../../worker/domain/comagic-time";
import { SANDBOX_ACCOUNT_TIME_ZONE } from "../../sandbox/comagic/calls-report-row";
import { app } from "../../worker/app";
import { requiredFieldsCacheKey } from "../../worker/routes/health";
import type { Env } from "../../worker/env";
import { env, exports } from "cloudflare:workers";

export const TOKEN = "test-token";
export const SECRET = "test-secret";

export type SandboxLead = Record<string, unknown> & {
  ID: string;
  PHONE?: { ID: string; VALUE: string }[];
  EMAIL?: { ID: string; VALUE: string }[];
  TIMELINE_COMMENTS: string[];
};

export async function sandbox(path: string, body?: unknown): Promise<Response> {
  return fetch(`${env.SANDBOX_URL}${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

export async function sandboxLeads(): Promise<SandboxLead[]> {
  return (await sandbox("/_sandbox/leads")).json();
}

export async function sandboxStats(): Promise<{ httpRequests: number; rejectedByRateLimit: number; methods: Record<string, number>; faultsInjected: Record<string, number> }> {
  return (await sandbox("/_sandbox/stats")).json();
}

/** Calls a Bitrix24 REST method on the sandbox portal the way an admin's script would. */
export async function bitrixCall(method: string, params: Record<string, unknown>): Promise<unknown> {
  const res = await fetch(`${env.BITRIX_WEBHOOK_URL}${method}.json`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(params) });
  return ((await res.json()) as { result: unknown }).result;
}

const digits = (s: string) => s.replace(/\D/g, "").replace(/^8/, "7");

export function leadsWithPhone(leads: SandboxLead[], phone: string): SandboxLead[] {
  return leads.filter((l) => l.PHONE?.some((p) => digits(p.VALUE) === digits(phone)));
}

/** Waits for the lead holding this phone (E.164), once `ready` says it is as the test needs it. */
export async function leadOf(e164: string, ready: (lead: SandboxLead) => boolean = () => true): Promise<SandboxLead> {
  return waitFor(async () => leadsWithPhone(await sandboxLeads(), e164).find(ready), `the lead of ${e164}`);
}

export async function hmacHex(body: string, secret: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export interface PostOptions {
  token?: string | null;
  signWith?: string | null;
  signature?: string;
  contentType?: string;
}

export async function postWebhook(body: unknown, options: PostOptions = {}): Promise<Response> {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  const token = options.token === undefined ? TOKEN : options.token;
  const headers: Record<string, string> = { "content-type": options.contentType ?? "application/json" };
  if (options.signature !== undefined) headers["x-comagic-signature"] = options.signature;
  else if (options.signWith) headers["x-comagic-signature"] = await hmacHex(raw, options.signWith);
  const url = `http://worker.test/webhooks/comagic${token === null ? "" : `?token=${encodeURIComponent(token)}`}`;
  return exports.default.fetch(new Request(url, { method: "POST", headers, body: raw }));
}

let sequence = Math.floor(Math.random() * 1_000_000);

/** A fresh valid Russian mobile number, in the `8 (9xx) xxx-xx-xx` spelling CoMagic admins often see. */
export function uniquePhone(): { local: string; e164: string } {
  sequence += 1;
  const n = String(100_000_000 + (sequence % 900_000_000)).padStart(9, "0");
  return { local: `8 (9${n.slice(0, 2)}) ${n.slice(2, 5)}-${n.slice(5, 7)}-${n.slice(7, 9)}`, e164: `+79${n}` };
}

export function uniqueSessionId(): number {
  sequence += 1;
  return 3_000_000_000 + sequence;
}

/** The seed article's call notification; every call gets its own session id and phone unless overridden. */
export function makeCallSession(overrides: Record<string, unknown> = {}) {
  return {
    event_type: "call_session_completed",
    call_session: {
      id: uniqueSessionId(),
      is_lost_call: false,
      duration_total: 95,
      visitor_phone_number: uniquePhone().local,
      visitor_id: "7001234",
      utm_source: "yandex",
      utm_medium: "cpc",
      utm_campaign: "spring_sale",
      utm_content: "ad_42",
      utm_term: "sofa",
      employee_full_name: "Ivan Petrov",
      traffic_type: "paid",
      site_domain_url: "https://shop.example.ru/sofas",
      tags: ["target", "new client"],
      file_link: "https://media.comagic.ru/1/record.mp3",
      ...overrides,
    },
  };
}

export function makeChatSession(overrides: Record<string, unknown> = {}) {
  return {
    event_type: "chat_session_completed",
    chat_session: {
      id: uniqueSessionId(),
      visitor_id: "7005555",
      visitor_name: "Anna",
      visitor_phone_number: null,
      visitor_email: null,
      utm_source: "google",
      utm_medium: "organic",
      employee_full_name: "Olga Sidorova",
      site_domain_url: "https://shop.example.ru/",
      tags: [],
      ...overrides,
    },
  };
}

export async function waitFor<T>(probe: () => Promise<T | null | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Waits until the worker has stopped talking to Bitrix24 for a while: the queue has delivered
 * everything (a batch waits at most 2 s to fill, so 3 s of silence means no batch is pending).
 */
export async function waitForQuiet(quietMs = 3_000, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  let last = (await sandboxStats()).httpRequests;
  let lastChange = Date.now();
  while (Date.now() - lastChange < quietMs) {
    if (Date.now() - started > timeoutMs) throw new Error("The worker kept calling Bitrix24");
    await new Promise((r) => setTimeout(r, 250));
    const now = (await sandboxStats()).httpRequests;
    if (now !== last) {
      last = now;
      lastChange = Date.now();
    }
  }
}

/** ADMIN_TOKEN in test/vitest.config.ts. */
export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123";

/** A time as CoMagic's reports write it for the account's zone (the worker's default, Europe/Moscow). */
export function comagicTime(date: Date): string {
  return formatComagicDateTime(date, SANDBOX_ACCOUNT_TIME_ZONE);
}

export async function comagicStats(): Promise<{ logins: number; authorizedCalls: number; methods: Record<string, number>; errors: Record<string, number> }> {
  return (await sandbox("/_sandbox/comagic/stats")).json();
}

export function admin(path: string, init: RequestInit = {}, token: string | null = ADMIN_TOKEN): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  return exports.default.fetch(new Request(`http://worker.test/admin${path}`, { ...init, headers }));
}

/** Visits of one visitor, `daysAgo` apart, oldest first; the first has utm_source google. */
export function visitorSessions(visitorId: number, channels: (string | null)[]): Record<string, unknown>[] {
  return channels.map((channel, i) => ({
    id: visitorId * 100 + i,
    date_time: comagicTime(new Date(Date.now() - (channels.length - i) * 86_400_000)),
    visitor_id: visitorId,
    channel,
    source_name: channel,
    referrer: i === 0 ? "https://www.google.com/" : null,
    entrance_page: `https://shop.example.ru/page${i}`,
    utm_source: i === 0 ? "google" : null,
    utm_medium: i === 0 ? "cpc" : null,
    utm_campaign: null,
    utm_content: null,
    utm_term: null,
  }));
}

/** The worker's app under other settings or bindings, as a deploy with other vars would run it, with real bindings otherwise. */
export function workerWithEnv(overrides: Partial<Record<keyof Env, unknown>>): (request: Request) => Promise<Response> {
  const changed = { ...env, ...overrides } as Env;
  const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
  return async (request) => app.fetch(request, changed, ctx);
}

/** Every CRM entity of the sandbox portal with its timeline (comments, to-dos, telephony calls). */
export interface SandboxCrm {
  leads: SandboxLead[];
  deals: SandboxLead[];
  contacts: SandboxLead[];
  companies: SandboxLead[];
  calls: Record<string, unknown>[];
}
export async function sandboxCrm(): Promise<SandboxCrm> {
  return (await sandbox("/_sandbox/crm")).json();
}

/**
 * Forgets what the worker keeps about the portal in KV (its CRM mode for 5 minutes, a telephony refusal for an
 * hour, the required fields /health found for 10 minutes), as if that time had passed: a test that changes the
 * sandbox portal's settings calls this. A shard's files share one KV.
 */
export async function forgetPortalSettings(): Promise<void> {
  const kv = (env as unknown as Env).COMAGIC_CACHE;
  await kv?.delete("crm-mode:v1");
  await kv?.delete("telephony-refused:v1");
  for (const mode of ["classic", "simple"] as const) await kv?.delete(requiredFieldsCacheKey(mode));
}

/** /health as the operator sees it (with the admin token): status, CRM mode, problems and warnings. */
export async function adminHealth(): Promise<{
  status: string;
  crmMode?: string;
  feed?: { lastSuccessAt: string | null; cursor: string | null; behindMinutes: number | null; lastRead: Record<string, unknown> | null; lastError: string | null } | null;
  problems: { setting: string; problem: string }[];
  warnings: { setting: string; problem: string }[];
}> {
  return (await exports.default.fetch(new Request("http://worker.test/health", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }))).json();
}

export interface DeadLetterView {
  id: string;
  jobType: string;
  code: string;
  reason: string;
  job: { event?: { key?: string }; sessionId?: string };
}

/** Waits for the pending dead letter whose job matches, as the operator lists them. */
export async function deadLetterWhere(match: (letter: DeadLetterView) => boolean, what = "the dead letter"): Promise<DeadLetterView> {
  return waitFor(async () => {
    const { deadLetters } = (await (await admin("/dead-letters?pending=1")).json()) as { deadLetters: DeadLetterView[] };
    return deadLetters.find(match);
  }, what);
}

let formIp = 0;
/** A website form posted to /forms as the snippet would (an allowed origin, a fresh address so no rate limit bites). */
export function postWebsiteForm(fields: Record<string, string>, fetcher: (request: Request) => Promise<Response> = workerWithEnv({})): Promise<Response> {
  formIp += 1;
  const request = new Request("http://worker.test/forms", {
    method: "POST",
    headers: { "content-type": "application/json", origin: "https://shop.example.ru", "cf-connecting-ip": `198.51.100.${formIp % 250}` },
    body: JSON.stringify(fields),
  });
  return fetcher(request);
}
