import { createBitrixClient } from "../worker/bitrix/client";
import { createCoMagicRpcClient, type TokenStore } from "../worker/comagic/data-api";
import type { ConversionSettings } from "../worker/domain/offline-conversions";
import { momentsOfDeals, sendConversions } from "../worker/jobs/conversions";
import { sendDealChanges } from "../worker/jobs/deal-loop";
import { createLogger } from "../worker/log";
import { metricaClient } from "../worker/metrica/client";
import { d1AttributionStore } from "../worker/storage/attribution";
import type { DealRecord } from "../worker/storage/attribution-store";
import { d1ConversionStore } from "../worker/storage/conversions";
import { d1CrmVisitorStore } from "../worker/storage/crm-visitors";
import { d1AppliedEvents, deadLetterStore } from "../worker/storage/d1";
import { d1DealJournal } from "../worker/storage/deal-journal";
import { d1CrmCommunications } from "../worker/storage/crm-communications";

/*
 * A bench-only worker (bench/loop.ts): the deal loop and the Metrica conversions exactly as a portal tick runs them,
 * on real D1 inside workerd, against the sandboxes. The bench marks deal changes as the report's sync would
 * (`/changed`) and fires ticks at a simulated time (`/tick`); each answer says what the tick cost.
 */

interface BenchEnv {
  DB: D1Database;
}

interface Setup {
  bitrixWebhookUrl: string;
  dataApiUrl: string;
  metricaUrl: string;
  login: string;
  password: string;
  counterId: string;
  metricaToken: string;
  intervalMinutes: number;
  conversionsIntervalMinutes: number;
}

const PORTAL = "default";
const SETTINGS: ConversionSettings = { goals: { qualified: "crm_qualified", won: "crm_won" }, qualifiedLeadStatus: null };
const tokens = new Map<string, { accessToken: string; expireAt: number }>();
const tokenStore: TokenStore = { get: async (k) => tokens.get(k) ?? null, put: async (k, t) => void tokens.set(k, t), delete: async (k) => void tokens.delete(k) };
const log = createLogger({ bench: "loop" }, () => undefined);

async function tick(env: BenchEnv, setup: Setup, now: Date) {
  const bitrix = createBitrixClient({ baseUrl: setup.bitrixWebhookUrl, timeoutMs: 20_000 });
  const dataApi = createCoMagicRpcClient({ url: setup.dataApiUrl, auth: { kind: "login", login: setup.login, password: setup.password }, tokens: tokenStore, api: "Data API" });
  let metricaRequests = 0;
  const counting: typeof fetch = (input, init) => {
    metricaRequests += 1;
    return fetch(input, init);
  };
  const attribution = d1AttributionStore(env.DB, PORTAL);
  const deals = await sendDealChanges({
    portal: PORTAL,
    bitrix,
    dataApi,
    journal: d1DealJournal(env.DB, PORTAL),
    ledger: d1AppliedEvents(env.DB, PORTAL),
    communications: d1CrmCommunications(env.DB, PORTAL),
    deadLetters: deadLetterStore(env.DB),
    state: { get: (name) => attribution.getState(name), set: (name, value) => attribution.setState(name, value) },
    accountCurrency: "RUB",
    timeZone: "Europe/Moscow",
    intervalMinutes: setup.intervalMinutes,
    now: () => now,
    log,
  });
  const conversions = await sendConversions({
    dataApi,
    metrica: metricaClient({ token: setup.metricaToken, baseUrl: setup.metricaUrl, fetch: counting }),
    counterId: setup.counterId,
    intervalMinutes: setup.conversionsIntervalMinutes,
    conversions: d1ConversionStore(env.DB, PORTAL),
    visitors: d1CrmVisitorStore(env.DB, PORTAL),
    goals: SETTINGS.goals,
    timeZone: "Europe/Moscow",
    now: () => now,
    log,
  });
  return { deals, conversions, bitrixRequests: bitrix.requestCount, metricaRequests };
}

export default {
  async fetch(request: Request, env: BenchEnv): Promise<Response> {
    const url = new URL(request.url);
    const body = (await request.json()) as Record<string, unknown>;
    if (url.pathname === "/seed") {
      // The ledger and visitor rows the lead writes and the enrichment would have made.
      const rows = body.leads as { leadId: string; key: string; visitorId: string; communicationId: number; at: string }[];
      const at = new Date().toISOString();
      const statements = rows.flatMap((r) => [
        env.DB.prepare("INSERT OR IGNORE INTO applied_events (portal, key, ref, applied_at) VALUES (?, ?, ?, ?)").bind(PORTAL, r.key, r.leadId, at),
        env.DB.prepare("INSERT OR IGNORE INTO crm_visitors (portal, ref, visitor_id, written_at) VALUES (?, ?, ?, ?)").bind(PORTAL, r.leadId, r.visitorId, at),
        // What the call record job keeps of each call (jobs/call-record.ts): the deal loop links by it without a read.
        env.DB.prepare("INSERT OR IGNORE INTO crm_communications (portal, ref, communication_id, communication_type, at) VALUES (?, ?, ?, 'call', ?)").bind(PORTAL, r.leadId, r.communicationId, r.at),
      ]);
      await d1AppliedEvents(env.DB, PORTAL).find([]);
      await d1DealJournal(env.DB, PORTAL).waiting(1);
      for (let i = 0; i < statements.length; i += 90) await env.DB.batch(statements.slice(i, i + 90));
      return Response.json({ ok: true });
    }
    if (url.pathname === "/changed") {
      // What the report's sync hands on (jobs/report-sync.ts dealChanges): the journal and the conversions.
      const deals = body.deals as DealRecord[];
      const at = new Date(String(body.at));
      await d1DealJournal(env.DB, PORTAL).markChanged(deals, at);
      await d1ConversionStore(env.DB, PORTAL).add("metrica", momentsOfDeals(deals, SETTINGS), at);
      return Response.json({ ok: true });
    }
    if (url.pathname === "/tick") return Response.json(await tick(env, body.setup as Setup, new Date(String(body.now))));
    return new Response("not found", { status: 404 });
  },
};
