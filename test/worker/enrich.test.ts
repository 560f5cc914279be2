import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxBitrix, sandboxDataApi } from "./consumer-support";
import { createCrmStore } from "../../worker/bitrix/crm-store";
import worker from "../../worker/index";
import { handleEnrichJobs } from "../../worker/jobs/enrich";
import { createLogger } from "../../worker/log";
import { d1AttributionStore } from "../../worker/storage/attribution";
import { d1CrmVisitorStore } from "../../worker/storage/crm-visitors";
import { ensureSchema } from "../../worker/storage/d1-schema";
import { type D1Spy, spyOnD1 } from "./d1-spy";
import { admin, comagicStats, comagicTime, makeCallSession, postWebhook, sandbox, sandboxLeads, uniquePhone, visitorSessions, waitFor, type SandboxLead } from "./support";

let visitorSeq = 8_000_000 + Math.floor(Math.random() * 100_000) * 10;
const newVisitor = () => ++visitorSeq;

/** A call from the visitor: its notification, and its row in CoMagic's calls report, as a real account has both. */
async function callFromVisitor(visitorId: number): Promise<string> {
  const phone = uniquePhone();
  const body = makeCallSession({ visitor_phone_number: phone.local, visitor_id: String(visitorId) });
  await sandbox("/_sandbox/comagic/data", {
    calls: [{ id: body.call_session.id, start_time: comagicTime(new Date(Date.now() - 120_000)), direction: "in", visitor_id: visitorId, contact_phone_number: phone.e164.slice(1) }],
  });
  expect((await postWebhook(body)).status).toBe(202);
  return phone.e164;
}

async function enrichedLead(visitorId: number, timeoutMs = 60_000): Promise<SandboxLead> {
  return waitFor(async () => (await sandboxLeads()).find((l) => l.UF_CRM_CM_VISITOR_ID === String(visitorId) && l.UF_CRM_CM_SESSIONS !== ""), `lead of visitor ${visitorId} enriched`, timeoutMs);
}

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
});
afterAll(async () => {
  await sandbox("/_sandbox/comagic/reset", {});
});

describe("enrichment from the CoMagic Data API", () => {
  it("fills the visitor's session count and first and last source, and caches the journey for the CRM tab", async () => {
    const visitor = newVisitor();
    await sandbox("/_sandbox/comagic/data", {
      visitor_sessions: visitorSessions(visitor, ["paid", "organic", "direct"]),
      communications: [{ id: 555, communication_type: "call", date_time: comagicTime(new Date(Date.now() - 60_000)), visitor_id: visitor, visitor_session_id: visitor * 100 + 2 }],
    });
    await callFromVisitor(visitor);
    const lead = await enrichedLead(visitor);
    expect(lead).toMatchObject({ UF_CRM_CM_SESSIONS: "3", UF_CRM_CM_FIRST_SRC: "google", UF_CRM_CM_LAST_SRC: "direct" });

    const journey = (await env.COMAGIC_CACHE?.get(`journey:v1:${visitor}`, "json")) as { touchpoints: { type: string }[] } | null;
    expect(journey?.touchpoints.map((t) => t.type)).toEqual(["session", "session", "session", "call"]);
  });

  // Sized for proof inside npm test's time: 20 leads, 50+ report calls with 30% of them failing (the sandbox's
  // fault sequence is fixed, so both fault kinds happen). `npm run soak` (TEST_SIZE=full) runs 100 leads.
  const LEADS = env.TEST_SIZE === "full" ? 100 : 20;
  it(`enriches ${LEADS} leads while tokens expire every few calls and 30% of report calls fail, logging in once per token`, async () => {
    await sandbox("/_sandbox/comagic/reset", {});
    // Each enrichment reads two reports: a token lasts three leads.
    await sandbox("/_sandbox/comagic/settings", { tokenMaxCalls: 6, faultRate: 0.3, faultKinds: ["limit", "internal", "http_503"], limitResetSeconds: 2 });
    const visitors = Array.from({ length: LEADS }, () => newVisitor());
    await sandbox("/_sandbox/comagic/data", { visitor_sessions: visitors.flatMap((v) => visitorSessions(v, ["paid", "social"])) });
    // One call at a time, each enriched in a batch of its own: a batch reads once for all its visitors, and this
    // test wants many reads for the faults and token expiries to happen in.
    for (const v of visitors) {
      await callFromVisitor(v);
      await new Promise((r) => setTimeout(r, 700));
    }

    await waitFor(
      async () => {
        const leads = await sandboxLeads();
        return visitors.every((v) => leads.some((l) => l.UF_CRM_CM_VISITOR_ID === String(v) && l.UF_CRM_CM_SESSIONS === "2" && l.UF_CRM_CM_LAST_SRC === "social"));
      },
      `all ${LEADS} leads enriched`,
      240_000,
    );
    const stats = await comagicStats();
    // The faults really happened...
    expect(stats.errors.limit_exceeded ?? 0).toBeGreaterThan(0);
    expect(stats.errors.internal_error ?? 0).toBeGreaterThan(0);
    // ...and every token served its six calls before the next login.user: one more for the last token, and one for
    // two batches in flight (each its own client) finding the same token dead before either stored the new one.
    // Without the shared login (a login per read) it is about twice the tokens used.
    expect(stats.logins).toBeLessThanOrEqual(Math.floor(stats.authorizedCalls / 6) + 2);
    expect(stats.logins).toBeGreaterThan(1);
  }, 300_000);
});

describe("an enrichment CoMagic refuses for good", () => {
  it("records a job CoMagic refuses for good, lists it for the operator, and replays it once fixed", async () => {
    await sandbox("/_sandbox/comagic/reset", {});
    const visitor = newVisitor();
    await sandbox("/_sandbox/comagic/data", { visitor_sessions: visitorSessions(visitor, ["paid"]) });
    // The cached token is gone with the reset, and the password no longer matches: auth_error, permanent.
    await sandbox("/_sandbox/comagic/settings", { password: "rotated-by-admin" });
    await callFromVisitor(visitor);

    const letter = await waitFor(
      async () => {
        const res = await admin("/dead-letters?pending=1");
        const { deadLetters } = (await res.json()) as { deadLetters: { id: string; jobType: string; code: string; reason: string; job: { visitorId?: string } }[] };
        // The call's record job (which names the visitor too) is refused the same way: this test is the enrichment's.
        return deadLetters.find((l) => l.job.visitorId === String(visitor) && l.jobType === "lead.enrich");
      },
      "the dead letter",
      60_000,
    );
    expect(letter).toMatchObject({ jobType: "lead.enrich", code: "auth_error" });
    expect(letter.reason).toContain("check COMAGIC_LOGIN and COMAGIC_PASSWORD");
    expect(letter.reason).not.toContain("sandbox-password");

    await sandbox("/_sandbox/comagic/settings", { password: "sandbox-password" });
    const replay = await admin(`/dead-letters/${letter.id}/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
    expect(await replay.json()).toEqual({ status: "replayed", id: letter.id, jobType: "lead.enrich", portal: "default" });
    expect((await enrichedLead(visitor)).UF_CRM_CM_SESSIONS).toBe("1");

    const after = (await (await admin("/dead-letters?pending=1")).json()) as { deadLetters: { id: string }[] };
    expect(after.deadLetters.map((l) => l.id)).not.toContain(letter.id);
  });
});

describe("the reads an enrichment batch costs", () => {
  /** Points the Data API charged per method: one per successful read, however many rows (data_api.txt:129, 150). */
  async function points(): Promise<Record<string, number>> {
    const stats = (await comagicStats()) as Awaited<ReturnType<typeof comagicStats>> & { points?: { methods: Record<string, number> } };
    return { ...(stats.points?.methods ?? stats.methods) };
  }

  it("20 leads enriched cost 2 reads: the visits and the contacts of all their visitors at once (visitor_id in […])", async () => {
    await sandbox("/_sandbox/comagic/reset", {});
    const visitors = Array.from({ length: 20 }, () => newVisitor());
    await sandbox("/_sandbox/comagic/data", {
      visitor_sessions: visitors.flatMap((v, i) => visitorSessions(v, i % 2 ? ["paid", "direct"] : ["organic"])),
      communications: visitors.map((v) => ({ id: v, communication_type: "call", date_time: comagicTime(new Date(Date.now() - 60_000)), visitor_id: v, visitor_session_id: v * 100 })),
    });
    const leadIds: string[] = [];
    for (const _ of visitors) {
      const seeded = await sandbox("/_sandbox/leads", { fields: { TITLE: "Caller", PHONE: [{ VALUE: uniquePhone().e164 }] } });
      leadIds.push(String(((await seeded.json()) as { id: number }).id));
    }
    const jobs = visitors.map((visitorId, i) => ({ type: "lead.enrich", v: 1, requestId: "batch", leadId: leadIds[i], entity: "lead", visitorId: String(visitorId), newContact: false }));
    const batch = createMessageBatch(
      "comagic-enrich-jobs",
      jobs.map((body, i) => ({ id: `e${i}`, timestamp: new Date(), attempts: 1, body })),
    );
    const before = await points();
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(20);
    const after = await points();
    // Reads only: logging in is no report read.
    const spent = Object.fromEntries(
      Object.entries(after)
        .filter(([method]) => method.startsWith("get."))
        .map(([method, n]) => [method, n - (before[method] ?? 0)])
        .filter(([, n]) => n !== 0),
    );
    expect(spent).toEqual({ "get.visitor_sessions_report": 1, "get.communications_report": 1 });

    // Each lead got its own visitor's journey, not a neighbour's.
    const leads = await sandboxLeads();
    for (const [i, visitorId] of visitors.entries()) {
      const lead = leads.find((l) => String(l.ID) === leadIds[i]);
      expect(lead).toMatchObject(
        i % 2
          ? { UF_CRM_CM_VISITOR_ID: String(visitorId), UF_CRM_CM_SESSIONS: "2", UF_CRM_CM_LAST_SRC: "direct" }
          : { UF_CRM_CM_VISITOR_ID: String(visitorId), UF_CRM_CM_SESSIONS: "1", UF_CRM_CM_LAST_SRC: "google" },
      );
      const journey = (await env.COMAGIC_CACHE?.get(`journey:v1:${visitorId}`, "json")) as { touchpoints: { type: string }[] } | null;
      expect(journey?.touchpoints.filter((t) => t.type === "call")).toHaveLength(1);
    }
  });
});

describe("the D1 commits an enrichment batch costs", () => {
  const bitrix = sandboxBitrix;
  const deps = (spy: D1Spy) => ({
    dataApi: sandboxDataApi(),
    bitrix: bitrix(),
    store: createCrmStore(bitrix()),
    journeys: null,
    attribution: d1AttributionStore(spy.db, "default"),
    visitors: d1CrmVisitorStore(spy.db, "default"),
    queue: "comagic-enrich-jobs",
    timeZone: "Europe/Moscow",
    deadLetters: { send: async () => {} },
    log: createLogger({}, () => {}),
    now: () => new Date(),
    random: () => 0.5,
  });
  const db = () => env.DB as D1Database;
  const touchesOf = async (id: string) =>
    (await db().prepare("SELECT touch_no, utm_source FROM attribution_touches WHERE portal = 'default' AND entity = 'lead' AND entity_id = ? ORDER BY touch_no").bind(id).all()).results;
  const visitorOf = async (id: string) => (await db().prepare("SELECT visitor_id FROM crm_visitors WHERE portal = 'default' AND ref = ?").bind(id).first<{ visitor_id: string }>())?.visitor_id ?? null;
  /** `count` leads in the sandbox portal, each with a visitor CoMagic knows two visits of. */
  async function leadsWithVisitors(count: number): Promise<{ leadId: string; visitorId: string }[]> {
    const visitors = Array.from({ length: count }, () => newVisitor());
    await sandbox("/_sandbox/comagic/data", { visitor_sessions: visitors.flatMap((v) => visitorSessions(v, ["paid", "direct"])) });
    const out: { leadId: string; visitorId: string }[] = [];
    for (const v of visitors) {
      const seeded = await sandbox("/_sandbox/leads", { fields: { TITLE: "Caller", PHONE: [{ VALUE: uniquePhone().e164 }] } });
      out.push({ leadId: String(((await seeded.json()) as { id: number }).id), visitorId: String(v) });
    }
    return out;
  }
  const batchOf = (leads: { leadId: string; visitorId: string }[], attempts = 1) =>
    createMessageBatch(
      "comagic-enrich-jobs",
      leads.map(({ leadId, visitorId }) => ({
        id: `d1-${leadId}`,
        timestamp: new Date(),
        attempts,
        body: { type: "lead.enrich", v: 1, requestId: "d1", leadId, entity: "lead", visitorId, newContact: false },
      })),
    );
  async function spied(refuse?: (sql: string, values: unknown[]) => boolean): Promise<D1Spy> {
    const spy = spyOnD1(db(), refuse);
    await ensureSchema(spy.db);
    spy.reset();
    return spy;
  }

  beforeAll(async () => {
    await sandbox("/_sandbox/comagic/reset", {});
  });

  it("a batch of 5 enrichments, one of whose leads is gone, writes the other 4 leads' credits and visitors in one commit each, and a redelivery writes no duplicates", async () => {
    const leads = [...(await leadsWithVisitors(4)), { leadId: "987654321", visitorId: String(newVisitor()) }];
    const spy = await spied();
    const batch = batchOf(leads);
    await handleEnrichJobs(batch.messages, deps(spy));
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toHaveLength(5);
    // Two commits for the batch (was two a lead: eight).
    expect({ commits: spy.commits.length, credits: spy.commitsTo("attribution_touches"), visitors: spy.commitsTo("crm_visitors") }).toEqual({ commits: 2, credits: 1, visitors: 1 });
    const written = await Promise.all(leads.slice(0, 4).map(async ({ leadId }) => touchesOf(leadId)));
    for (const [i, rows] of written.entries()) {
      expect(rows).toEqual([
        { touch_no: 0, utm_source: "google" },
        { touch_no: 1, utm_source: null },
      ]);
      expect(await visitorOf(leads[i]?.leadId ?? "")).toBe(leads[i]?.visitorId);
    }
    expect(await touchesOf("987654321")).toEqual([]);

    // At-least-once delivery: the same batch again leaves each lead one set of credits.
    const again = batchOf(leads, 2);
    await handleEnrichJobs(again.messages, deps(spy));
    expect((await getQueueResult(again, createExecutionContext())).explicitAcks).toHaveLength(5);
    expect(await Promise.all(leads.slice(0, 4).map(async ({ leadId }) => touchesOf(leadId)))).toEqual(written);
  });

  it("a lead whose credits D1 refuses goes back to the queue alone: the batch's other leads are written once and acked", async () => {
    const leads = await leadsWithVisitors(4);
    const refused = leads[2]?.leadId ?? "";
    const spy = await spied((sql, values) => sql.includes("attribution_touches") && values.includes(refused));
    const batch = batchOf(leads);
    await handleEnrichJobs(batch.messages, deps(spy));
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(
      leads
        .filter((l) => l.leadId !== refused)
        .map((l) => `d1-${l.leadId}`)
        .sort(),
    );
    expect(result.retryMessages.map((m) => m.msgId)).toEqual([`d1-${refused}`]);
    for (const { leadId, visitorId } of leads) {
      expect((await touchesOf(leadId)).length).toBe(leadId === refused ? 0 : 2);
      expect(await visitorOf(leadId)).toBe(leadId === refused ? null : visitorId);
    }

    // Its retry, once D1 takes it, writes it like the others.
    const retry = batchOf(
      leads.filter((l) => l.leadId === refused),
      2,
    );
    await handleEnrichJobs(retry.messages, deps(await spied()));
    expect((await getQueueResult(retry, createExecutionContext())).explicitAcks).toEqual([`d1-${refused}`]);
    expect((await touchesOf(refused)).length).toBe(2);
  });
});
