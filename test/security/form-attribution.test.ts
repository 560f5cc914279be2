import { createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAttributionReport } from "../../worker/bitrix-app/report";
import { createCrmStore } from "../../worker/bitrix/crm-store";
import { syncDeals } from "../../worker/bitrix/deal-sync";
import { periodDays, type ReportFilters } from "../../worker/domain/attribution-report";
import { messagesFor } from "../../worker/i18n";
import { handleEnrichJobs } from "../../worker/jobs/enrich";
import { createLogger } from "../../worker/log";
import { d1AttributionStore } from "../../worker/storage/attribution";
import { d1CrmVisitorStore } from "../../worker/storage/crm-visitors";
import { createExecutionContext, getQueueResult } from "cloudflare:test";
import { handleLeadBatch } from "../../worker/jobs/consumer";
import { leadJob } from "../../worker/jobs/schema";
import { callEvent } from "../fixtures/lead-event";
import { consumerDeps, sandboxBitrix, sandboxDataApi } from "../worker/consumer-support";
import {
  bitrixCall,
  forgetPortalSettings,
  makeCallSession,
  makeChatSession,
  postWebhook,
  postWebsiteForm,
  sandbox,
  sandboxCrm,
  uniquePhone,
  visitorSessions,
  waitFor,
  waitForQuiet,
  type SandboxLead,
} from "../worker/support";

/*
 * Issue #21 item 2. A website form is anonymous (worker/domain/verified-source.ts): naming a client's email and
 * another CoMagic visitor id, it must not move the client's visitor id, CoMagic fields, credits or revenue. The
 * attacker's visitor has visits of its own (seeded), so the old enrichment would have had something to write.
 */

const TZ = "Europe/Moscow";
let visitor = 7_600_000 + Math.floor(Math.random() * 100_000);
async function trackedVisitor(channels: (string | null)[]): Promise<string> {
  visitor += 1;
  await sandbox("/_sandbox/comagic/data", { visitor_sessions: visitorSessions(visitor, channels) });
  return String(visitor);
}

const bitrix = sandboxBitrix;
const db = () => env.DB as D1Database;
const touchesOf = async (entity: string, id: string) => (await db().prepare("SELECT * FROM attribution_touches WHERE entity = ? AND entity_id = ? ORDER BY touch_no").bind(entity, id).all()).results;
async function report(entity: "lead" | "deal") {
  const filters: ReportFilters = { period: "30d", days: periodDays("30d", new Date(), TZ), model: "first_touch", grouping: "utm_source", entity };
  await syncDeals({ bitrix: bitrix(), store: d1AttributionStore(db(), "default"), now: () => new Date(), baseCurrency: "RUB" });
  return (await loadAttributionReport(filters, { store: d1AttributionStore(db(), "default"), timeZone: TZ, hasDataApi: true, messages: messagesFor("en") })).report;
}
const CM_FIELDS = ["UF_CRM_CM_VISITOR_ID", "UF_CRM_CM_SESSIONS", "UF_CRM_CM_FIRST_SRC", "UF_CRM_CM_LAST_SRC", "UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN"];
const cmFields = (item: SandboxLead) => Object.fromEntries(CM_FIELDS.map((f) => [f, item[f]]));

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
  await sandbox("/_sandbox/portal", { mode: 2, telephony: { webhook: true } });
  await forgetPortalSettings();
});
afterAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await forgetPortalSettings();
});

describe("a form naming a client cannot move the client's attribution or revenue", () => {
  it("a client's deal credited to google keeps its visitor, fields and credits, and its won revenue stays with google", async () => {
    const client = uniquePhone();
    const own = await trackedVisitor(["paid", "paid"]);
    expect((await postWebhook(makeCallSession({ visitor_phone_number: client.local, visitor_id: own, utm_source: "google" }))).status).toBe(202);
    const enriched = await waitFor(async () => (await sandboxCrm()).deals.find((d) => d.UF_CRM_CM_VISITOR_ID === own && d.UF_CRM_CM_SESSIONS !== ""), "the client's deal, enriched");
    const dealId = String(enriched.ID);
    await waitFor(async () => (await touchesOf("deal", dealId)).length === 2, "the deal's credits");
    const email = `client${Date.now()}@example.ru`;
    await bitrixCall("crm.contact.update", { id: enriched.CONTACT_ID, fields: { EMAIL: [{ VALUE: email, VALUE_TYPE: "WORK" }] } });
    const creditsBefore = await touchesOf("deal", dealId);

    // The attacker's visitor came from "evil" ads; the form names the client's email and that visitor.
    visitor += 1;
    const attackerVisitor = String(visitor);
    await sandbox("/_sandbox/comagic/data", {
      visitor_sessions: visitorSessions(visitor, ["paid"]).map((s) => ({ ...s, utm_source: "evil", utm_medium: "cpc", source_name: "evil" })),
    });
    const attacker = uniquePhone();
    const res = await postWebsiteForm({ name: "Mallory", email, phone: attacker.local, comagic_visitor_id: attackerVisitor, utm_source: "evil", submission_id: `evil-${dealId}` });
    expect(res.status).toBe(202);
    await waitFor(async () => (await sandboxCrm()).deals.find((d) => String(d.ID) === dealId && d.TIMELINE_COMMENTS.length > 0), "the form's comment on the client's deal");
    // Enrichment runs ENRICH_DELAY_SECONDS after the write: let it run (or not) before looking.
    await new Promise((r) => setTimeout(r, 2_500));
    await waitForQuiet();

    const deal = (await sandboxCrm()).deals.find((d) => String(d.ID) === dealId) as SandboxLead;
    expect(cmFields(deal)).toEqual(cmFields(enriched));
    expect(await touchesOf("deal", dealId)).toEqual(creditsBefore);

    // The client buys: the revenue is google's, and "evil" appears nowhere in the report.
    await bitrixCall("crm.deal.update", { id: dealId, fields: { STAGE_ID: "WON", OPPORTUNITY: "90000", CURRENCY_ID: "RUB" } });
    const figures = await report("deal");
    const google = figures.rows.find((r) => r.key === "google");
    expect(google).toMatchObject({ won: 1, revenue: { RUB: 90000 } });
    expect(figures.rows.map((r) => r.key)).not.toContain("evil");
  });
});

// Issue #22: a chat's visitor id is CoMagic's own tracking, but of whoever opened the chat; it follows the contact that
// tied the chat to the deal (domain/verified-source.ts). The chat_session body names no channel: a site chat.
describe("a site chat naming a client cannot move the client's attribution", () => {
  const dealOf = async (phone: string) =>
    waitFor(async () => {
      const crm = await sandboxCrm();
      const contact = crm.contacts.find((c) => (c.PHONE ?? []).some((p) => p.VALUE === phone));
      return contact ? crm.deals.find((d) => String(d.CONTACT_ID) === String(contact.ID)) : null;
    }, `the deal of ${phone}`);

  it("typing the client's number from the attacker's own tracked visitor, it leaves the client's deal without that visitor, its fields and credits", async () => {
    const client = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: client.local, visitor_id: undefined }))).status).toBe(202);
    const before = await dealOf(client.e164);
    expect(before.UF_CRM_CM_VISITOR_ID ?? "").toBe("");

    visitor += 1;
    const attackerVisitor = String(visitor);
    await sandbox("/_sandbox/comagic/data", {
      visitor_sessions: visitorSessions(visitor, ["paid"]).map((s) => ({ ...s, utm_source: "evil", utm_medium: "cpc", source_name: "evil" })),
    });
    expect((await postWebhook(makeChatSession({ visitor_phone_number: client.local, visitor_id: attackerVisitor, utm_source: "evil" }))).status).toBe(202);
    await waitFor(async () => (await sandboxCrm()).deals.find((d) => d.ID === before.ID && d.TIMELINE_COMMENTS.length > 0), "the chat's comment on the client's deal");
    await new Promise((r) => setTimeout(r, 2_500));
    await waitForQuiet();

    const deal = (await sandboxCrm()).deals.find((d) => d.ID === before.ID) as SandboxLead;
    expect(cmFields(deal)).toEqual(cmFields(before));
    expect(await touchesOf("deal", String(deal.ID))).toEqual([]);
  });

  it("a WhatsApp chat from the client's own number (vouched for by the channel) fills the deal's empty visitor id, as a call would", async () => {
    const client = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: client.local, visitor_id: undefined }))).status).toBe(202);
    const before = await dealOf(client.e164);
    visitor += 1;
    const own = String(visitor);
    const key = `chat-${Date.now()}`;
    const chat = callEvent({
      kind: "chat",
      key,
      sessionId: key.slice(5),
      receivedAt: new Date().toISOString(),
      phone: client.e164,
      visitorId: own,
      call: null,
      chat: { channelType: "whatsapp", channelName: null, status: "succeed", pageUrl: null, messages: [], omitted: 0 },
    });
    const batch = createMessageBatch("comagic-lead-jobs", [{ id: key, timestamp: new Date(), attempts: 1, body: leadJob("default", chat, "whatsapp") }]);
    await handleLeadBatch(batch, consumerDeps({ crmMode: async () => "simple" }));
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toEqual([key]);
    const deal = (await sandboxCrm()).deals.find((d) => d.ID === before.ID) as SandboxLead;
    expect(deal.UF_CRM_CM_VISITOR_ID).toBe(own);
  });
});

describe("enrichment fills, it never moves", () => {
  const deps = () => ({
    dataApi: sandboxDataApi(),
    bitrix: bitrix(),
    store: createCrmStore(bitrix()),
    journeys: null,
    attribution: d1AttributionStore(db(), "default"),
    visitors: d1CrmVisitorStore(db(), "default"),
    queue: "comagic-enrich-jobs",
    timeZone: TZ,
    deadLetters: { send: async () => {} },
    log: createLogger({}, () => {}),
    now: () => new Date(),
    random: () => 0.5,
  });
  const enrich = async (entity: "deal", id: string, visitorId: string, attempts = 1) => {
    const body = { type: "lead.enrich", v: 1, requestId: "t", leadId: id, entity, visitorId, newContact: false };
    const batch = createMessageBatch("comagic-enrich-jobs", [{ id: `e-${id}-${visitorId}`, timestamp: new Date(), attempts, body }]);
    await handleEnrichJobs(batch.messages, deps());
  };

  it("a job naming another visitor leaves a deal's visitor, fields and credits as they were", async () => {
    const own = await trackedVisitor(["paid"]);
    expect((await postWebhook(makeCallSession({ visitor_phone_number: uniquePhone().local, visitor_id: own }))).status).toBe(202);
    const enriched = await waitFor(async () => (await sandboxCrm()).deals.find((d) => d.UF_CRM_CM_VISITOR_ID === own && d.UF_CRM_CM_SESSIONS !== ""), "the deal, enriched");
    await waitFor(async () => (await touchesOf("deal", String(enriched.ID))).length === 1, "the deal's credits");
    const credits = await touchesOf("deal", String(enriched.ID));
    await enrich("deal", String(enriched.ID), await trackedVisitor(["organic", "organic", "organic"]));
    const after = (await sandboxCrm()).deals.find((d) => d.ID === enriched.ID) as SandboxLead;
    expect(cmFields(after)).toEqual(cmFields(enriched));
    expect(await touchesOf("deal", String(enriched.ID))).toEqual(credits);
  });

  it("a visitor CoMagic has no visits of, once the reports had their time, writes nothing at all", async () => {
    const { id } = (await (await sandbox("/_sandbox/deals", { fields: { TITLE: "Typed in by hand", STAGE_ID: "NEW" } })).json()) as { id: number };
    await enrich("deal", String(id), "424242", 3);
    const deal = (await sandboxCrm()).deals.find((d) => String(d.ID) === String(id)) as SandboxLead;
    expect(deal.UF_CRM_CM_VISITOR_ID ?? "").toBe("");
    expect(deal.UF_CRM_CM_SESSIONS ?? "").toBe("");
    expect(await touchesOf("deal", String(id))).toEqual([]);
  });
});
