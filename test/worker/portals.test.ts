import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { callEvent } from "../fixtures/lead-event";
import type { Env } from "../../worker/env";
import worker from "../../worker/index";
import { leadJob } from "../../worker/jobs/schema";
import { d1AttributionStore } from "../../worker/storage/attribution";
import { d1CrmVisitorStore } from "../../worker/storage/crm-visitors";
import { deadLetterStore, d1AppliedEvents } from "../../worker/storage/d1";
import { migrateSchema } from "../../worker/storage/d1-schema";
import { install, storedPortal } from "./app-support";
import { PORTALS, type PortalName, portalSettingsOf, webhookTokenOf } from "./portal-support";
import { admin, leadsWithPhone, makeCallSession, type SandboxLead, sandbox, sandboxLeads, uniquePhone, uniqueSessionId, waitFor, waitForQuiet } from "./support";

/*
 * Many portals from one deployment (issue #23): two stored portals, each with its own Bitrix24 portal and CoMagic
 * account in the sandbox (/p/alpha, /p/beta), receive the same calls (same phone, same CoMagic session id), and
 * neither sees the other's leads, ledger, dead letters, report rows or tab visitors; each refuses the other's token.
 */

const db = () => env.DB as D1Database;
const tokenOf = webhookTokenOf;
const settingsOf = (portal: PortalName) => portalSettingsOf(portal, { ALLOWED_ORIGINS: `https://${portal}.example` });

const put = (portal: string, body: unknown) => admin(`/portals/${portal}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const leadsOf = async (portal: "alpha" | "beta"): Promise<SandboxLead[]> => (await fetch(`${PORTALS[portal].url}/_sandbox/leads`)).json();
const webhook = (portal: string, body: unknown, token: string) =>
  exports.default.fetch(new Request(`http://worker.test/webhooks/comagic/${portal}?token=${token}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }));
const form = (portal: string, origin: string, fields: Record<string, string>) =>
  exports.default.fetch(
    new Request(`http://worker.test/forms/${portal}`, {
      method: "POST",
      headers: { "content-type": "application/json", origin, "cf-connecting-ip": `192.0.2.${Math.floor(Math.random() * 250)}` },
      body: JSON.stringify(fields),
    }),
  );

describe("a database made before portals", () => {
  // Runs first: this file's D1 is new, so the tables below are the only ones, as on a deployment upgraded today.
  it("is migrated on first use: its rows become the default portal's, and read back through the stores", async () => {
    await db().batch(
      [
        "CREATE TABLE applied_events (key TEXT PRIMARY KEY, lead_id TEXT NOT NULL, applied_at TEXT NOT NULL)",
        "CREATE TABLE contact_leads (contact TEXT PRIMARY KEY, lead_id TEXT NOT NULL, written_at TEXT NOT NULL)",
        "CREATE TABLE sync_state (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        `CREATE TABLE dead_letters (id TEXT PRIMARY KEY, queue TEXT NOT NULL, job_type TEXT NOT NULL, job TEXT NOT NULL, reason TEXT NOT NULL,
           code TEXT NOT NULL, attempts INTEGER NOT NULL, failed_at TEXT NOT NULL, replayed_at TEXT, replay_count INTEGER NOT NULL DEFAULT 0)`,
        "INSERT INTO applied_events VALUES ('call:900001', '77', '2026-11-01T00:00:00.000Z')",
        "INSERT INTO contact_leads VALUES ('phone:+79990001122', '77', '2026-11-01T00:00:00.000Z')",
        "INSERT INTO sync_state VALUES ('comagic_feed', '{}')",
        "INSERT INTO dead_letters (id, queue, job_type, job, reason, code, attempts, failed_at) VALUES ('old-letter', 'q', 'lead.ingest', '{}', 'r', 'C', 1, '2026-11-01T00:00:00.000Z')",
      ].map((sql) => db().prepare(sql)),
    );
    const { migrated } = await migrateSchema(db());
    expect(migrated.sort()).toEqual(["applied_events", "contact_keys", "dead_letters", "sync_state"]);
    const ledger = d1AppliedEvents(db(), "default");
    expect(Object.fromEntries(await ledger.find(["call:900001"]))).toEqual({ "call:900001": "77" });
    expect(Object.fromEntries(await ledger.findContactKeys(["phone:+79990001122"]))).toEqual({ "phone:+79990001122": "77" });
    expect(await d1AppliedEvents(db(), "alpha").find(["call:900001"])).toEqual(new Map());
    expect((await deadLetterStore(db()).get("old-letter"))?.portal).toBe("default");
    // Run again (another isolate, the admin command): nothing left to do.
    expect((await migrateSchema(db())).migrated).toEqual([]);
    expect(await (await admin("/portals/migrate", { method: "POST" })).json()).toMatchObject({ migrated: [] });
  });
});

describe("two portals from one deployment", () => {
  beforeAll(async () => {
    for (const portal of ["alpha", "beta"] as const) {
      const res = await put(portal, { settings: settingsOf(portal), memberId: `sandbox-member-${portal}` });
      expect(res.status, await res.clone().text()).toBe(201);
    }
  });

  it("keeps each portal's secrets sealed in D1 and lists only their names", async () => {
    const row = await db().prepare("SELECT settings, secrets FROM portal_settings WHERE portal = 'alpha'").first<{ settings: string; secrets: string }>();
    expect(row?.secrets).not.toContain(PORTALS.alpha.comagic.password);
    expect(row?.secrets).not.toContain(tokenOf("alpha"));
    expect(row?.settings).not.toContain(PORTALS.alpha.comagic.password);
    const listed = JSON.stringify(await (await admin("/portals")).json());
    expect(listed).not.toContain(PORTALS.alpha.comagic.password);
    expect(listed).not.toContain(PORTALS.alpha.bitrixWebhookUrl);
    expect(listed).toContain('"secretsSet":["BITRIX_WEBHOOK_URL","COMAGIC_PASSWORD","COMAGIC_WEBHOOK_TOKEN"]');
    expect(listed).toContain("http://worker.test/webhooks/comagic/alpha?token=");
  });

  it("refuses settings a portal may not have, or that are not valid, naming the setting and never its value", async () => {
    const queue = await put("gamma", { settings: { ...settingsOf("alpha"), LEAD_QUEUE_NAME: "other" } });
    expect(queue.status).toBe(400);
    expect(await queue.json()).toMatchObject({ error: "unknown_setting" });
    const bad = await put("gamma", { settings: { ...settingsOf("alpha"), BITRIX_WEBHOOK_URL: "https://evil.example/hook-secret-value" } });
    expect(bad.status).toBe(400);
    const text = await bad.text();
    expect(text).toContain("BITRIX_WEBHOOK_URL");
    expect(text).not.toContain("hook-secret-value");
    expect((await put("default", { settings: {} })).status).toBe(409);
    expect((await put("Bad_Key", { settings: {} })).status).toBe(400);
    // The same Bitrix24 portal cannot be two portals of the deployment.
    expect((await put("gamma", { settings: settingsOf("alpha"), memberId: "sandbox-member-alpha" })).status).toBe(409);
  });

  it("writes the same call (same phone, same CoMagic session id) to each portal's own Bitrix24 once, and to no other", async () => {
    const phone = uniquePhone();
    const call = makeCallSession({ id: uniqueSessionId(), visitor_phone_number: phone.local, file_link: null });
    expect((await webhook("alpha", call, tokenOf("alpha"))).status).toBe(202);
    expect((await webhook("beta", call, tokenOf("beta"))).status).toBe(202);
    const alpha = await waitFor(async () => leadsWithPhone(await leadsOf("alpha"), phone.e164)[0], "alpha's lead");
    const beta = await waitFor(async () => leadsWithPhone(await leadsOf("beta"), phone.e164)[0], "beta's lead");
    // Again, to each: the ledger of each portal knows its own call.
    expect((await webhook("alpha", call, tokenOf("alpha"))).status).toBe(202);
    await waitForQuiet();
    expect(leadsWithPhone(await leadsOf("alpha"), phone.e164)).toHaveLength(1);
    expect(leadsWithPhone(await leadsOf("beta"), phone.e164)).toHaveLength(1);
    expect(leadsWithPhone(await sandboxLeads(), phone.e164)).toEqual([]);
    // A call is applied under its CoMagic session id.
    const key = String(call.call_session.id);
    const applied = async (portal: string) =>
      (await (await admin(`/applied?portal=${portal}`, { method: "POST", body: JSON.stringify({ keys: [key] }) })).json()) as { applied: Record<string, string> };
    expect((await applied("alpha")).applied[key]).toBe(alpha.ID);
    expect((await applied("beta")).applied[key]).toBe(beta.ID);
    expect((await applied("default")).applied[key]).toBeUndefined();
  });

  it("refuses one portal's webhook token on another's URL, and a portal it does not have", async () => {
    const call = makeCallSession({ visitor_phone_number: uniquePhone().local });
    expect((await webhook("beta", call, tokenOf("alpha"))).status).toBe(401);
    expect((await webhook("alpha", call, "test-token")).status).toBe(401);
    expect((await webhook("nosuch", call, tokenOf("alpha"))).status).toBe(404);
    const res = await exports.default.fetch(
      new Request(`http://worker.test/webhooks/comagic?token=${tokenOf("alpha")}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(call) }),
    );
    expect(res.status).toBe(401);
  });

  it("takes forms for a portal only from that portal's sites, and serves each portal a script that posts to it", async () => {
    const phone = uniquePhone();
    expect((await form("alpha", "https://beta.example", { name: "X", phone: phone.local })).status).toBe(403);
    expect((await form("alpha", "https://alpha.example", { name: "X", phone: phone.local })).status).toBe(202);
    await waitFor(async () => leadsWithPhone(await leadsOf("alpha"), phone.e164)[0], "the form's lead on alpha");
    const script = await exports.default.fetch(new Request("http://worker.test/s/alpha.js"));
    expect(script.status).toBe(200);
    const source = await script.text();
    expect(source).toContain('"/forms/alpha"');
    expect(source).not.toContain('"/forms"');
    expect((await exports.default.fetch(new Request("http://worker.test/s/nosuch.js"))).status).toBe(404);
  });

  it("replays a dead letter to the portal its job names", async () => {
    const phone = uniquePhone();
    const id = `letter-${crypto.randomUUID()}`;
    const job = leadJob("beta", callEvent({ key: `call:${uniqueSessionId()}`, phone: phone.e164, receivedAt: new Date().toISOString() }), "replay");
    await deadLetterStore(db()).record([
      { id, queue: "comagic-lead-jobs", jobType: "lead.ingest", portal: "beta", letter: { job, reason: "Bitrix24 was down", code: "X", attempts: 20, failedAt: new Date().toISOString() } },
    ]);
    const listed = async (portal: string) => ((await (await admin(`/dead-letters?portal=${portal}`)).json()) as { deadLetters: { id: string }[] }).deadLetters.map((l) => l.id);
    expect(await listed("beta")).toContain(id);
    expect(await listed("alpha")).not.toContain(id);
    expect(await (await admin(`/dead-letters/${id}/replay`, { method: "POST" })).json()).toMatchObject({ status: "replayed", portal: "beta" });
    await waitFor(async () => leadsWithPhone(await leadsOf("beta"), phone.e164)[0], "the replayed lead on beta");
    expect(leadsWithPhone(await leadsOf("alpha"), phone.e164)).toEqual([]);
  });

  it("keeps report rows and the tab's visitors apart for equal deal and lead ids", async () => {
    const row = {
      touchNo: 0,
      at: new Date().toISOString(),
      utmSource: "google",
      utmMedium: "cpc",
      utmCampaign: null,
      sourceMedium: "google / cpc",
      cmCampaignId: null,
      cmCampaignName: null,
      cmChannel: null,
      siteId: null,
      shares: { first_touch: 1, last_touch: 1, last_non_direct: 1, linear: 1, time_decay: 1, position_based: 1 },
    };
    await d1AttributionStore(db(), "alpha").putCredits("lead", "4242", new Date(), [row]);
    await d1AttributionStore(db(), "alpha").putDeals([{ dealId: "9", sourceEntity: "lead", sourceId: "4242", semantic: "S", amount: 1000, currency: "RUB", createdAt: null, modifiedAt: null }]);
    const range = { from: new Date(Date.now() - 86_400_000), to: new Date(Date.now() + 86_400_000) };
    expect(await d1AttributionStore(db(), "alpha").credited("lead", ["4242"])).toEqual(new Set(["4242"]));
    expect(await d1AttributionStore(db(), "beta").credited("lead", ["4242"])).toEqual(new Set());
    expect(await d1AttributionStore(db(), "beta").dealsOf("lead", range)).toEqual([]);
    await d1CrmVisitorStore(db(), "alpha").record([{ ref: { type: "lead", id: "4242" }, visitorId: "555" }], new Date());
    expect(await d1CrmVisitorStore(db(), "alpha").find({ type: "lead", id: "4242" })).toBe("555");
    expect(await d1CrmVisitorStore(db(), "beta").find({ type: "lead", id: "4242" })).toBeNull();
  });

  it("sends a portal's messages back to the queue while its Bitrix24 budget is spoken for, and writes another portal's in the same batch at once", async () => {
    // The default portal has a backlog: its budget is spoken for a minute ahead (40 rounds of 3 permits at 2 a second).
    const state = (env as unknown as Env).PORTAL_STATE;
    for (let i = 0; i < 40; i++) await state?.getByName("default").admit(3, 600_000);
    const busy = uniquePhone();
    const quiet = uniquePhone();
    const job = (portal: string, phone: string) => leadJob(portal, callEvent({ key: `call:${uniqueSessionId()}`, phone, receivedAt: new Date().toISOString() }), "gate");
    const batch = createMessageBatch("comagic-lead-jobs", [
      { id: "busy", timestamp: new Date(), attempts: 1, body: job("default", busy.e164) },
      { id: "quiet", timestamp: new Date(), attempts: 1, body: job("beta", quiet.e164) },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env as unknown as Env);
    const result = await getQueueResult(batch, ctx);
    // Both acked: the busy portal's job went back to the queue as a new message (no retry counted, no dead letter).
    expect(result.explicitAcks.sort()).toEqual(["busy", "quiet"]);
    expect(result.retryMessages).toEqual([]);
    expect(leadsWithPhone(await leadsOf("beta"), quiet.e164)).toHaveLength(1);
    expect(leadsWithPhone(await sandboxLeads(), busy.e164)).toEqual([]);
  });

  it("removes a portal with everything kept about it, says what went, and leaves the other portal whole", async () => {
    const res = await admin("/portals/alpha", { method: "DELETE" });
    expect(res.status).toBe(200);
    const { deleted } = (await res.json()) as { deleted: { rows: Record<string, number>; portalState: string[] } };
    expect(deleted.rows).toMatchObject({ portal_settings: 1, applied_events: expect.any(Number), attribution_touches: 1, crm_deals: 1, crm_visitors: expect.any(Number) });
    expect(deleted.portalState.length).toBeGreaterThan(0);
    expect((await webhook("alpha", makeCallSession(), tokenOf("alpha"))).status).toBe(404);
    expect((await admin("/portals/alpha", { method: "DELETE" })).status).toBe(404);
    expect(await d1AppliedEvents(db(), "alpha").find(["x"])).toEqual(new Map());
    expect((await db().prepare("SELECT COUNT(*) AS n FROM applied_events WHERE portal = 'alpha'").first<{ n: number }>())?.n).toBe(0);
    expect((await db().prepare("SELECT COUNT(*) AS n FROM applied_events WHERE portal = 'beta'").first<{ n: number }>())?.n).toBeGreaterThan(0);
    const listed = (await (await admin("/portals")).json()) as { portals: { portal: string }[] };
    expect(listed.portals.map((p) => p.portal)).toEqual(["default", "beta"]);
  });
});

describe("the app's removal from a Bitrix24 portal (ONAPPUNINSTALL)", () => {
  const uninstallEvent = async (clean: boolean): Promise<string> => {
    const res = await sandbox("/_sandbox/bitrix/app/uninstall", { clean, deliver: false });
    const { delivered } = (await res.json()) as { delivered: { handler: string; body: string }[] };
    const event = delivered.find((d) => d.handler.endsWith("/bitrix/uninstall"));
    if (!event) throw new Error(`the install bound no ONAPPUNINSTALL handler: ${JSON.stringify(delivered)}`);
    return event.body;
  };
  const postEvent = (body: string) =>
    exports.default.fetch(new Request("http://worker.test/bitrix/uninstall", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body }));

  it("is refused without the application_token the install gave, and deletes nothing", async () => {
    await sandbox("/_sandbox/reset", {});
    expect((await install()).status).toBe(200);
    // Its OAuth tokens are sealed at rest with SETTINGS_KEY, bound to the install.
    const tokens = await storedPortal();
    const row = await db()
      .prepare("SELECT record FROM app_installs WHERE member_id = ?")
      .bind(tokens?.memberId ?? "")
      .first<{ record: string }>();
    expect(row?.record).toContain('"sealed"');
    expect(row?.record).not.toContain(tokens?.accessToken ?? "?");
    expect(row?.record).not.toContain(tokens?.refreshToken ?? "?");
    const body = new URLSearchParams(await uninstallEvent(false));
    body.set("auth[application_token]", "forged-token");
    expect((await postEvent(body.toString())).status).toBe(401);
    expect(await storedPortal()).not.toBeNull();
  });

  it("deletes the app's tokens (Bitrix24 revoked them) and keeps the portal's data when the admin kept the app's data", async () => {
    await sandbox("/_sandbox/reset", {});
    expect((await install()).status).toBe(200);
    const applied = await db().prepare("SELECT COUNT(*) AS n FROM applied_events WHERE portal = 'default'").first<{ n: number }>();
    const res = await postEvent(await uninstallEvent(false));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "uninstalled", portal: "default", clean: false, deleted: { rows: { app_installs: 1 } } });
    expect(await storedPortal()).toBeNull();
    expect(await db().prepare("SELECT COUNT(*) AS n FROM applied_events WHERE portal = 'default'").first<{ n: number }>()).toEqual(applied);
    // Installed again, it works again.
    await sandbox("/_sandbox/reset", {});
    expect((await install()).status).toBe(200);
    expect(await storedPortal()).not.toBeNull();
  });

  it("deletes everything kept about the portal when the admin asked to delete the app's data, and says what went", async () => {
    await sandbox("/_sandbox/reset", {});
    expect((await install()).status).toBe(200);
    const res = await postEvent(await uninstallEvent(true));
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { clean: boolean; deleted: { rows: Record<string, number> } };
    expect(answer.clean).toBe(true);
    expect(answer.deleted.rows).toMatchObject({ app_installs: 1, applied_events: expect.any(Number) });
    expect(await storedPortal()).toBeNull();
    expect((await db().prepare("SELECT COUNT(*) AS n FROM applied_events WHERE portal = 'default'").first<{ n: number }>())?.n).toBe(0);
    // The other portal's rows stay.
    expect((await db().prepare("SELECT COUNT(*) AS n FROM applied_events WHERE portal = 'beta'").first<{ n: number }>())?.n).toBeGreaterThan(0);
    await sandbox("/_sandbox/reset", {});
  });
});
