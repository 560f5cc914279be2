import { env, exports } from "cloudflare:workers";
import type { AppInstall } from "../../worker/bitrix/app-client";
import { d1CrmVisitorStore } from "../../worker/storage/crm-visitors";
import { d1AppInstalls } from "../../worker/storage/app-installs";
import type { Env } from "../../worker/env";
import { settingsKeysOf } from "../../worker/wiring";
import { sandbox } from "./support";

/** Helpers for the Bitrix24 app's routes: tokens from the sandbox portal, and the forms a card posts. */

export const MEMBER = "sandbox-member-0001";
/** The first TAB_TOKEN_SECRET key in test/vitest.config.ts: the one that signs. */
export const TAB_KEYS = ["test-tab-token-key-new-0123456789abcdef"];

export interface PortalTokens {
  AUTH_ID: string;
  REFRESH_ID: string;
  AUTH_EXPIRES: number;
  member_id: string;
  APPLICATION_TOKEN: string;
  SERVER_ENDPOINT: string;
  DOMAIN: string;
}

export const portalHost = () => new URL(env.BITRIX_WEBHOOK_URL ?? "").host;

/** Tokens the sandbox portal hands an app for a user, as on install or in a card's placement POST. */
export async function tokensFor(userId: number, app: "ours" | "other" = "ours"): Promise<PortalTokens> {
  return (await sandbox("/_sandbox/bitrix/app/tokens", { userId, app })).json();
}

type Fetcher = (request: Request) => Promise<Response>;
const worker: Fetcher = (request) => exports.default.fetch(request);

let address = 0;
/** Each request from an address of its own, so only the test about the per-IP limit meets it. */
const freshIp = () => `198.18.${Math.floor(++address / 250) % 250}.${address % 250}`;

/** `LANG=en` as an English-speaking user's portal sends it, so assertions read the English catalogue; Russian has its own tests. */
export function postForm(
  path: string,
  fields: Record<string, string>,
  query = `?DOMAIN=${portalHost()}&PROTOCOL=0&LANG=en`,
  fetcher: Fetcher = worker,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetcher(
    new Request(`http://worker.test${path}${query}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "cf-connecting-ip": freshIp(), ...headers },
      body: new URLSearchParams(fields).toString(),
    }),
  );
}

/** The install form Bitrix24 posts with a portal's app tokens (FACTS.md §1.2), with `overrides`. */
export function installFields(
  t: { AUTH_ID: string; AUTH_EXPIRES: string | number; REFRESH_ID: string; member_id: string; APPLICATION_TOKEN: string; SERVER_ENDPOINT: string },
  overrides: Record<string, string> = {},
) {
  return {
    AUTH_ID: t.AUTH_ID,
    AUTH_EXPIRES: String(t.AUTH_EXPIRES),
    REFRESH_ID: t.REFRESH_ID,
    member_id: t.member_id,
    APPLICATION_TOKEN: t.APPLICATION_TOKEN,
    SERVER_ENDPOINT: t.SERVER_ENDPOINT,
    status: "L",
    ...overrides,
  };
}

export async function install(userId = 1, overrides: Record<string, string> = {}, app: "ours" | "other" = "ours", fetcher: Fetcher = worker): Promise<Response> {
  return postForm("/bitrix/install", installFields(await tokensFor(userId, app), overrides), undefined, fetcher);
}

export async function openTab(leadId: string, userId = 2, overrides: Record<string, string> = {}, query?: string, fetcher: Fetcher = worker, app: "ours" | "other" = "ours"): Promise<Response> {
  const t = await tokensFor(userId, app);
  return postForm(
    "/bitrix/tab",
    {
      AUTH_ID: t.AUTH_ID,
      AUTH_EXPIRES: "3600",
      REFRESH_ID: t.REFRESH_ID,
      member_id: MEMBER,
      status: "L",
      PLACEMENT: "CRM_LEAD_DETAIL_TAB",
      PLACEMENT_OPTIONS: JSON.stringify({ ID: leadId }),
      ...overrides,
    },
    query,
    fetcher,
  );
}

export async function seedLead(fields: Record<string, unknown>): Promise<string> {
  const { id } = (await (await sandbox("/_sandbox/leads", { fields })).json()) as { id: number };
  return String(id);
}

/** The app page as CRM Analytics posts it for a user (LANG: the user's interface language). */
export async function openReport(userId: number, lang = "en", fetcher: Fetcher = worker): Promise<Response> {
  const t = await tokensFor(userId);
  return postForm(
    "/bitrix/app",
    {
      AUTH_ID: t.AUTH_ID,
      AUTH_EXPIRES: "3600",
      REFRESH_ID: t.REFRESH_ID,
      member_id: MEMBER,
      status: "L",
      APPLICATION_TOKEN: t.APPLICATION_TOKEN,
      PLACEMENT: "CRM_ANALYTICS_MENU",
      PLACEMENT_OPTIONS: "{}",
    },
    `?DOMAIN=${portalHost()}&PROTOCOL=0&LANG=${lang}`,
    fetcher,
  );
}

/**
 * Records a visitor id as the worker's own (D1 crm_visitors), as its enrichment does when it fills the field: for
 * records the tests seed by hand, whose journey the tab would otherwise not show (issue #21 item 10).
 */
export async function asWrittenByWorker(type: "lead" | "deal", id: string | number, visitorId: string | number): Promise<void> {
  await d1CrmVisitorStore(env.DB as D1Database, "default").record([{ ref: { type, id: String(id) }, visitorId: String(visitorId) }], new Date());
}

export const tokenIn = (html: string) => /data-token="([^"]+)"/.exec(html)?.[1] ?? "";

/** `lang`: the tab page's language, which the Call button sends along; refusals come back in it. */
export function call(token: string, fetcher: Fetcher = worker, lang = "en"): Promise<Response> {
  return fetcher(new Request("http://worker.test/bitrix/call", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token, lang }) }));
}

export async function callsMade(): Promise<Record<string, unknown>[]> {
  return (await sandbox("/_sandbox/comagic/calls-made")).json();
}

/** The app's install on the sandbox portal as the worker keeps it (D1), its tokens opened with SETTINGS_KEY. */
export async function storedPortal(): Promise<AppInstall | null> {
  return installStore().get(MEMBER);
}

/** The worker's store of app installs, with the tests' SETTINGS_KEY. */
export function installStore() {
  return d1AppInstalls(env.DB as D1Database, settingsKeysOf(env as unknown as Env));
}
