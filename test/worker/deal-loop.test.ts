import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "../../worker/config";
import type { Env } from "../../worker/env";
import { runPortalTick } from "../../worker/jobs/scheduled";
import { createLogger } from "../../worker/log";
import { loadAttributionReport } from "../../worker/bitrix-app/report";
import { messagesFor } from "../../worker/i18n";
import { d1AttributionStore } from "../../worker/storage/attribution";
import { d1DealJournal } from "../../worker/storage/deal-journal";
import { admin, bitrixCall, comagicStats, comagicTime, deadLetterWhere, makeCallSession, postWebhook, sandbox, sandboxLeads, uniquePhone, waitFor } from "./support";

/*
 * Deals into CoMagic's end-to-end analytics (issue #25 §1), in workerd against both sandboxes, through the portal's
 * tick as the cron runs it: the report's deal sync marks a credited deal's change, the deal loop re-reads the deal
 * and its crm.stagehistory.list, and uploads what is new with upload.deals_history. The sandbox's CoMagic refuses a
 * whole request for one bad record (FACTS-loop §1.5 "Whole request fails on one bad record", §6.1), a stage time before
 * the last one it holds (§1.4, §6.2), and links a deal only to a communication_id it knows (§1.5 "Which id": a call's
 * communication id is not its session id); Bitrix24's sandbox keeps each deal's stage history
 * (loop-docs/api-reference__crm__crm-stage-history-list.txt) and its currencies (FACTS-portals §11: USD at 90 roubles).
 */

type CoMagicDeal = {
  ext_id: string;
  employee_ext_id: string | null;
  stage_ext_id: string;
  revenue: number | null;
  closed_date_time: string | null;
  linked: { communication_id: number; communication_type: string } | null;
  history: { stage_ext_id: string; modified_stage_date_time: string; is_generated: boolean }[];
  records: number;
};

const log = createLogger({ test: "deal-loop" });

/** One tick of the default portal with deals going to CoMagic; FEED_INTERVAL 5: a change waits no tick. */
async function tick(extra: Record<string, string> = {}): Promise<void> {
  const loopEnv = { ...env, COMAGIC_DEALS: "true", FEED_INTERVAL_MINUTES: "5", ...extra } as unknown as Env;
  const result = readConfig(loopEnv);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  await runPortalTick(loopEnv, result.config, log, new Date());
}

async function comagicDeal(dealId: string | number): Promise<CoMagicDeal | null> {
  const res = await sandbox(`/_sandbox/comagic/deals/${dealId}`);
  return res.ok ? ((await res.json()) as CoMagicDeal) : null;
}

async function comagicDeals(): Promise<{ deals: CoMagicDeal[]; employees: Record<string, string>; stats: { rejectedUploads: number } }> {
  return (await sandbox("/_sandbox/comagic/deals")).json();
}

/** A credited lead: what the report's sync keeps deals of. Seeded straight into D1, as enrichment would write it. */
async function creditedLead(): Promise<string> {
  const { id } = (await (await sandbox("/_sandbox/leads", { fields: { TITLE: "Seeded", PHONE: [{ VALUE: uniquePhone().e164, VALUE_TYPE: "WORK" }] } })).json()) as { id: number };
  const at = new Date().toISOString();
  await env.DB?.prepare(
    "INSERT INTO attribution_touches (portal, entity, entity_id, touch_no, created_at, at, first_touch, last_touch, last_non_direct, linear, time_decay, position_based) VALUES ('default', 'lead', ?, 0, ?, ?, 1, 1, 1, 1, 1, 1)",
  )
    .bind(String(id), at, at)
    .run();
  return String(id);
}

async function dealFrom(leadId: string, fields: Record<string, string>, createdAt?: Date): Promise<string> {
  const res = await sandbox("/_sandbox/deals", { fields: { TITLE: "Sofa", STAGE_ID: "NEW", ...fields }, fromLead: leadId, ...(createdAt ? { createdAt: createdAt.toISOString() } : {}) });
  return String(((await res.json()) as { id: number }).id);
}

const VISITOR = 8_400_000 + Math.floor(Math.random() * 90_000);
let callLead = "";
let callCommunication = 0;

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
  // §1.1: the CoMagic admin connected end-to-end analytics («Другая CRM»); until then every deal method is refused.
  await sandbox("/_sandbox/comagic/deals/settings", { endToEndAnalytics: true });
  const phone = uniquePhone();
  const body = makeCallSession({ visitor_phone_number: phone.local, visitor_id: String(VISITOR) });
  callCommunication = body.call_session.id * 3 + 1;
  await sandbox("/_sandbox/comagic/data", {
    visitor_sessions: [{ id: VISITOR * 10, date_time: comagicTime(new Date(Date.now() - 86_400_000)), visitor_id: VISITOR, channel: "paid", source_name: "yandex", utm_source: "yandex", site_id: 77 }],
    calls: [
      {
        id: body.call_session.id,
        communication_id: callCommunication,
        start_time: comagicTime(new Date(Date.now() - 120_000)),
        direction: "in",
        visitor_id: VISITOR,
        contact_phone_number: phone.e164.slice(1),
      },
    ],
  });
  expect((await postWebhook(body)).status).toBe(202);
  const lead = await waitFor(async () => (await sandboxLeads()).find((l) => l.UF_CRM_CM_VISITOR_ID === String(VISITOR) && l.UF_CRM_CM_SESSIONS !== ""), "lead enriched", 60_000);
  callLead = String(lead.ID);
  await waitFor(
    async () =>
      ((await env.DB?.prepare("SELECT COUNT(*) AS n FROM attribution_touches WHERE portal = 'default' AND entity = 'lead' AND entity_id = ?").bind(callLead).first<{ n: number }>())?.n ?? 0) > 0,
    "credits stored",
    30_000,
  );
}, 120_000);

describe("deals into CoMagic's end-to-end analytics", () => {
  let wonDeal = "";

  it("sends a call's deal won in dollars on a rouble account as one CoMagic deal: revenue converted, linked to the call, stages in order", async () => {
    wonDeal = await dealFrom(callLead, { OPPORTUNITY: "1000", CURRENCY_ID: "USD", ASSIGNED_BY_ID: "2" }, new Date(Date.now() - 3_600_000));
    await bitrixCall("crm.deal.update", { id: wonDeal, fields: { STAGE_ID: "PREPARATION" } });
    await bitrixCall("crm.deal.update", { id: wonDeal, fields: { STAGE_ID: "WON" } });
    await tick();

    const deal = await comagicDeal(wonDeal);
    // 1000 USD at the portal's 90 roubles a dollar (crm.currency.list AMOUNT "90.0000"): CoMagic's revenue has no currency.
    expect(deal?.revenue).toBe(90_000);
    expect(deal?.linked).toEqual({ communication_id: callCommunication, communication_type: "call" });
    expect(deal?.history.filter((h) => !h.is_generated).map((h) => h.stage_ext_id)).toEqual(["NEW", "PREPARATION", "WON"]);
    expect(deal?.stage_ext_id).toBe("WON");
    expect(deal?.closed_date_time).not.toBeNull();
    const times = deal?.history.map((h) => h.modified_stage_date_time) ?? [];
    expect([...times].sort()).toEqual(times);
    // The funnel was made from the portal's pipeline before the first deal (§1.2).
    const { deals, employees } = await comagicDeals();
    expect(deals.filter((d) => d.ext_id === wonDeal)).toHaveLength(1);
    // Its responsible is a CoMagic employee made first (§1.3 create.deal_employees), named as in Bitrix24.
    expect(deal?.employee_ext_id).toBe("2");
    expect(employees).toMatchObject({ "2": "Maria Sales" });
  });

  it("changes nothing in CoMagic for a late, out-of-order stage event or a repeated one", async () => {
    const before = await comagicDeal(wonDeal);
    const { stats } = await comagicDeals();
    // Bitrix24 tells of a move to EXECUTING that happened before the win, late (FACTS-loop §1.7, §6 "Bitrix24 side").
    const won = before?.history.at(-1)?.modified_stage_date_time ?? "";
    const earlier = new Date(Date.now() - 30 * 60_000).toISOString();
    expect((await sandbox("/_sandbox/bitrix/stage-history", { ownerId: Number(wonDeal), stageId: "EXECUTING", at: earlier })).status).toBe(201);
    await bitrixCall("crm.deal.update", { id: wonDeal, fields: { COMMENTS: "touched" } });
    await tick();
    await tick();

    const after = await comagicDeal(wonDeal);
    expect(after?.history).toEqual(before?.history);
    expect(after?.records).toBe(before?.records);
    expect(after?.history.at(-1)?.modified_stage_date_time).toBe(won);
    // Nothing was sent that CoMagic would refuse for going back in time.
    expect((await comagicDeals()).stats.rejectedUploads).toBe(stats.rejectedUploads);
  });

  it("links a deal by the communication its call record kept, without a Data API read of its own", async () => {
    const lead = await creditedLead();
    const communication = 7_700_000 + Math.floor(Math.random() * 90_000);
    const at = new Date(Date.now() - 3_600_000);
    await sandbox("/_sandbox/comagic/data", { calls: [{ id: communication * 2, communication_id: communication, start_time: comagicTime(at), direction: "in" }] });
    // What jobs/call-record.ts keeps when it applies the call's record (its communication_id, not its session id).
    await env.DB?.prepare("INSERT INTO crm_communications (portal, ref, communication_id, communication_type, at) VALUES ('default', ?, ?, 'call', ?)")
      .bind(lead, communication, at.toISOString())
      .run();
    const deal = await dealFrom(lead, { OPPORTUNITY: "700", CURRENCY_ID: "RUB" });
    const reads = (await comagicStats()).methods["get.calls_report"] ?? 0;
    await tick();
    expect((await comagicDeal(deal))?.linked).toEqual({ communication_id: communication, communication_type: "call" });
    expect((await comagicStats()).methods["get.calls_report"] ?? 0).toBe(reads);
  });

  it("uploads 39 of 40 deals when CoMagic refuses one, and dead-letters that one with CoMagic's reason", async () => {
    const leads = await Promise.all(Array.from({ length: 40 }, () => creditedLead()));
    const dealIds: string[] = [];
    for (const lead of leads) {
      const id = await dealFrom(lead, { OPPORTUNITY: "500", CURRENCY_ID: "RUB" });
      // Made ten minutes ago (its creation's history row moves too), changed now: the sync sees it by DATE_MODIFY.
      await sandbox(`/_sandbox/bitrix/deals/${id}/dates`, { DATE_CREATE: new Date(Date.now() - 600_000).toISOString() });
      dealIds.push(id);
    }
    const bad = dealIds[17] as string;
    // Another integration already told CoMagic of a later stage of this deal: ours goes back in time, which CoMagic
    // refuses, failing the whole request it is in (§1.4 monotonic rule, §1.5).
    await otherIntegrationUploads(bad);
    const { stats } = await comagicDeals();
    await tick();

    const { deals, stats: after } = await comagicDeals();
    const sent = dealIds.filter((id) => id !== bad);
    for (const id of sent) expect({ id, stage: deals.find((d) => d.ext_id === id)?.stage_ext_id }).toEqual({ id, stage: "NEW" });
    expect(deals.find((d) => d.ext_id === bad)?.stage_ext_id).toBe("PREPARATION");
    expect(after.rejectedUploads).toBeGreaterThan(stats.rejectedUploads);
    const letter = await deadLetterWhere((l) => l.jobType === "deal.upload" && (l.job as { dealId?: string }).dealId === bad, "the refused deal's dead letter");
    expect(letter.code).toBe("invalid_date_time");
    const state = async (id: string) => (await env.DB?.prepare("SELECT state FROM deal_journal WHERE portal = 'default' AND deal_id = ?").bind(id).first<{ state: string }>())?.state;
    expect(await state(bad)).toBe("rejected");
    expect(await state(sent[0] as string)).toBe("sent");

    // The report's notes say how many went and how many CoMagic refused.
    const { notes } = await loadAttributionReport(
      { period: "7d", days: { from: "2026-01-01", to: "2026-01-07" }, model: "last_touch", grouping: "source_medium", entity: "lead" },
      {
        store: d1AttributionStore(env.DB as D1Database, "default"),
        timeZone: "Europe/Moscow",
        hasDataApi: true,
        messages: messagesFor("en"),
        loop: { deals: d1DealJournal(env.DB as D1Database, "default"), conversions: null },
      },
    );
    expect(notes).toContain("Deals sent to CoMagic's end-to-end analytics: 41, 1 refused by CoMagic (see the dead letters).");

    // Its replay puts the deal back in line for the next tick.
    expect((await admin(`/dead-letters/${encodeURIComponent(letter.id)}/replay`, { method: "POST" })).status).toBe(202);
    await waitFor(async () => (await state(bad)) === "waiting", "the replayed deal waiting again");
  }, 120_000);
});

/** upload.deals_history as another system would call it, with the sandbox account's login. */
async function otherIntegrationUploads(dealId: string): Promise<void> {
  const rpc = async (method: string, params: Record<string, unknown>) => {
    const res = await fetch(env.COMAGIC_DATA_API_URL ?? "", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
    return (await res.json()) as { result?: { data: { access_token?: string } }; error?: unknown };
  };
  const login = await rpc("login.user", { login: env.COMAGIC_LOGIN, password: env.COMAGIC_PASSWORD });
  const now = comagicTime(new Date());
  const answer = await rpc("upload.deals_history", {
    access_token: login.result?.data.access_token,
    deals: [{ ext_id: dealId, name: "Sofa", created_date_time: now, modified_stage_date_time: now, sales_funnel_ext_id: "bitrix24-category-0", stage_ext_id: "PREPARATION" }],
  });
  expect(answer.error).toBeUndefined();
}
