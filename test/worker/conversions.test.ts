import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "../../worker/config";
import type { Env } from "../../worker/env";
import { runPortalTick } from "../../worker/jobs/scheduled";
import { createLogger } from "../../worker/log";
import { d1ConversionStore } from "../../worker/storage/conversions";
import { ensureSchema } from "../../worker/storage/d1-schema";
import { loadAttributionReport } from "../../worker/bitrix-app/report";
import type { ReportFilters } from "../../worker/domain/attribution-report";
import { messagesFor } from "../../worker/i18n";
import { d1AttributionStore } from "../../worker/storage/attribution";
import { bitrixCall, comagicTime, postWebsiteForm, sandbox, uniquePhone, waitFor, workerWithEnv } from "./support";

/*
 * Offline conversions to Yandex Metrica (issue #25 §3), through the portal's tick in workerd against the sandboxes.
 * The sandbox's Metrica answers 200 for a received file and moves its status per read to PROCESSED (FACTS-loop §3.3,
 * §6 "Yandex Metrica" 1), links only visitors seen within 21 days (§3.4, §6.2) and overwrites a re-sent row (§3.5).
 * Who the visitor is comes from CoMagic's visits (ym_client_id, FACTS-loop §3.7; comagic/FACTS.md §2 lists it among
 * get.visitor_sessions_report's fields).
 */

type MetricaState = { uploads: { id: number; status: string; rows: { id: string; target: string; dateTime: number; price: number | null; currency: string | null }[] }[] };

const log = createLogger({ test: "conversions" });
// The sandbox's counter and token (sandbox/metrica.ts SANDBOX_METRICA), with goals crm_qualified and crm_won.
const METRICA = {
  METRICA_COUNTER_ID: "2215573",
  METRICA_TOKEN: "sandbox-metrica-token",
  QUALIFIED_LEAD_STATUS: "IN_PROCESS",
};

// The sandbox's GA4 property (sandbox/ga4.ts SANDBOX_GA4): /mp/collect keeps only its events.
const GA4 = { GA4_MEASUREMENT_ID: "G-SANDBOX000", GA4_API_SECRET: "sandbox-ga4-secret" };

async function tick(): Promise<void> {
  const tickEnv = { ...env, ...METRICA, ...GA4, METRICA_API_URL: env.SANDBOX_URL, GA4_API_URL: env.SANDBOX_URL, FEED_INTERVAL_MINUTES: "5", CONVERSIONS_INTERVAL_MINUTES: "5" } as unknown as Env;
  const result = readConfig(tickEnv);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  await runPortalTick(tickEnv, result.config, log, new Date());
}

/** The attribution report's notes as the page shows them, in English. */
async function reportNotes(): Promise<string[]> {
  const db = env.DB as D1Database;
  const days = { from: new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 10), to: new Date().toISOString().slice(0, 10) };
  const { notes } = await loadAttributionReport({ period: "7d", days, model: "last_touch", grouping: "source_medium", entity: "lead" } satisfies ReportFilters, {
    store: d1AttributionStore(db, "default"),
    timeZone: "Europe/Moscow",
    hasDataApi: true,
    messages: messagesFor("en"),
    loop: { deals: null, conversions: d1ConversionStore(db, "default") },
  });
  return notes;
}

const metrica = async (): Promise<MetricaState> => (await sandbox("/_sandbox/metrica")).json();
const rowsOf = (state: MetricaState, clientId: string) => state.uploads.flatMap((u) => u.rows.filter((r) => r.id === clientId));

/** A lead that came from CoMagic (credited, its visitor recorded) whose visitor was last on the site `daysAgo`. */
async function leadOfVisitor(clientId: string, daysAgo: number): Promise<string> {
  const visitor = 9_100_000 + Math.floor(Math.random() * 800_000);
  const { id } = (await (await sandbox("/_sandbox/leads", { fields: { TITLE: "From a call", PHONE: [{ VALUE: uniquePhone().e164, VALUE_TYPE: "WORK" }] } })).json()) as { id: number };
  const at = new Date().toISOString();
  await env.DB?.batch([
    env.DB.prepare(
      "INSERT INTO attribution_touches (portal, entity, entity_id, touch_no, created_at, at, first_touch, last_touch, last_non_direct, linear, time_decay, position_based) VALUES ('default', 'lead', ?, 0, ?, ?, 1, 1, 1, 1, 1, 1)",
    ).bind(String(id), at, at),
    env.DB.prepare("INSERT INTO crm_visitors (portal, ref, visitor_id, written_at) VALUES ('default', ?, ?, ?)").bind(String(id), String(visitor), at),
  ]);
  await sandbox("/_sandbox/comagic/data", {
    visitor_sessions: [
      {
        id: visitor * 10,
        date_time: comagicTime(new Date(Date.now() - daysAgo * 86_400_000)),
        visitor_id: visitor,
        channel: "paid",
        source_name: "yandex",
        ym_client_id: clientId,
        // CoMagic keeps GA's client id of a visit too (FACTS-loop §3.7: ua_client_id).
        ua_client_id: `${clientId.slice(0, 9)}.1764800000`,
        site_id: 77,
      },
    ],
  });
  // Metrica knows the visitor from its own counter (§3.4: a conversion links to the visitor's visits).
  await sandbox("/_sandbox/metrica/visits", { clientId, daysAgo });
  return String(id);
}

async function wonDealOf(leadId: string, amount: string, currency: string): Promise<string> {
  const { id } = (await (await sandbox("/_sandbox/deals", { fields: { TITLE: "Sofa", STAGE_ID: "NEW", OPPORTUNITY: amount, CURRENCY_ID: currency }, fromLead: leadId })).json()) as { id: number };
  await bitrixCall("crm.deal.update", { id, fields: { STAGE_ID: "WON" } });
  return String(id);
}

const RECENT = "133591247640966458";
const OLD = "133591247640966999";

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
  await fetch(`${env.SANDBOX_URL}/_sandbox/metrica`, { method: "DELETE" });
  await sandbox("/_sandbox/ga4/reset", {});
  await ensureSchema(env.DB as D1Database);
});

describe("offline conversions to Yandex Metrica", () => {
  it("sends a qualified lead and its won deal as two rows, once, even when the tick runs again", async () => {
    const lead = await leadOfVisitor(RECENT, 1);
    await bitrixCall("crm.lead.update", { id: lead, fields: { STATUS_ID: "IN_PROCESS" } });
    const deal = await wonDealOf(lead, "1000", "USD");
    await tick();
    // Redelivered, or the next cron run: each conversion went out already.
    await tick();

    const rows = rowsOf(await metrica(), RECENT);
    expect(rows.map((r) => r.target).sort()).toEqual(["crm_qualified", "crm_won"]);
    // The deal made from the qualified lead is that lead's qualification, not a third row; the win carries its revenue.
    expect(rows.find((r) => r.target === "crm_won")).toMatchObject({ price: 1000, currency: "USD" });
    const stored = await env.DB?.prepare("SELECT key, state FROM conversions WHERE portal = 'default' AND destination = 'metrica' ORDER BY key").all<{ key: string; state: string }>();
    expect(stored?.results).toEqual([
      { key: `deal:${deal}:won`, state: "sent" },
      { key: `lead:${lead}:qualified`, state: "sent" },
    ]);
    // GA4 gets the same two moments once, by the visit's GA client id; the win with its value (FACTS-loop §4).
    const { events } = (await (await sandbox("/_sandbox/ga4/events")).json()) as { events: Record<string, { clientId: string; name: string; params: Record<string, unknown> }[]> };
    const mine = (events["G-SANDBOX000"] ?? []).filter((e) => e.clientId === `${RECENT.slice(0, 9)}.1764800000`);
    expect(mine.map((e) => e.name).sort()).toEqual(["crm_qualified", "crm_won"]);
    expect(mine.find((e) => e.name === "crm_won")?.params).toMatchObject({ value: 1000, currency: "USD" });
  });

  it("polls Metrica until each upload is processed, and counts what linked per day", async () => {
    await sandbox("/_sandbox/metrica/process", {});
    await tick();
    const [today] = await d1ConversionStore(env.DB as D1Database, "default").outcomes("metrica", new Date(Date.now() - 86_400_000));
    expect(today).toMatchObject({ day: new Date().toISOString().slice(0, 10), sent: 2, linked: 2, notLinked: 0, processing: 0 });
    expect((await metrica()).uploads.every((u) => u.status === "PROCESSED")).toBe(true);
  });

  it("sends no row for a visitor last seen 25 days ago, and counts it", async () => {
    const lead = await leadOfVisitor(OLD, 25);
    await wonDealOf(lead, "500", "RUB");
    await tick();
    expect(rowsOf(await metrica(), OLD)).toEqual([]);
    const [today] = await d1ConversionStore(env.DB as D1Database, "default").outcomes("metrica", new Date(Date.now() - 86_400_000));
    // Both its moments (the deal made, and won) are too old to link (§3.4: 21 days).
    expect(today?.tooOld).toBe(2);
    // The marketer reads the day's outcome in the report's notes.
    const day = new Date().toISOString().slice(0, 10);
    expect(await reportNotes()).toContain(`Yandex Metrica, ${day}: 2 conversion(s) sent, 2 linked, 0 not linked; 2 not sent: the visitor's last visit was over 21 days ago.`);
  });
  it("converts a form's visitor CoMagic does not know by the _ym_uid the snippet sent", async () => {
    const ymUid = `17${Math.floor(Math.random() * 1e15)}`;
    const phone = uniquePhone();
    // Conversions on for the forms route too (the settings are the portal's; the env type lists wrangler.toml's only).
    const worker = workerWithEnv({ ...METRICA, METRICA_API_URL: env.SANDBOX_URL } as Parameters<typeof workerWithEnv>[0]);
    expect((await postWebsiteForm({ name: "Ivan", phone: phone.local, ym_uid: ymUid, page_url: "https://shop.example.ru/sofa" }, worker)).status).toBeLessThan(300);
    const ref = await waitFor(
      async () => (await env.DB?.prepare("SELECT ref FROM applied_events WHERE portal = 'default' AND key LIKE 'form-%' ORDER BY applied_at DESC").first<{ ref: string }>())?.ref,
      "the form's lead in the ledger",
    );
    // The report credits it (it came through the worker); a manager qualifies it.
    const at = new Date().toISOString();
    await env.DB?.prepare(
      "INSERT INTO attribution_touches (portal, entity, entity_id, touch_no, created_at, at, first_touch, last_touch, last_non_direct, linear, time_decay, position_based) VALUES ('default', 'lead', ?, 0, ?, ?, 1, 1, 1, 1, 1, 1)",
    )
      .bind(ref, at, at)
      .run();
    await bitrixCall("crm.lead.update", { id: ref, fields: { STATUS_ID: "IN_PROCESS" } });
    await tick();
    expect(rowsOf(await metrica(), ymUid).map((r) => r.target)).toEqual(["crm_qualified"]);
  });
});
