import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  visitorSessions,
  admin,
  adminHealth,
  deadLetterWhere,
  forgetPortalSettings,
  makeCallSession,
  postWebhook,
  sandbox,
  sandboxCrm,
  uniquePhone,
  waitFor,
  waitForQuiet,
  type SandboxLead,
} from "./support";

/*
 * A portal without leads (FACTS-portals §1: crm.settings.mode.get answers 2; a crm.lead.add there is converted
 * into a deal at once). The worker writes a contact and a deal instead, and reuses the contact's open deal
 * (stage semantic P, FACTS-portals §2) inside LEAD_DEDUP_DAYS. findbycomm lags 30 s here (FACTS.md §7), so
 * every second event must find the contact through the worker's own records.
 */
beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/portal", { mode: 2, telephony: { webhook: true } });
  await sandbox("/_sandbox/faults", { findbycommLagMs: 30_000 });
  await forgetPortalSettings();
});
afterAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await forgetPortalSettings();
});

let visitor = 7_300_000 + Math.floor(Math.random() * 100_000);

/** A visitor CoMagic's reports know (two visits), so enrichment credits the deal at once. */
async function trackedVisitor(): Promise<string> {
  visitor += 1;
  await sandbox("/_sandbox/comagic/data", { visitor_sessions: visitorSessions(visitor, ["paid", "organic"]) });
  return String(visitor);
}

/** Once enrichment stored the deal's credits: whether the report counts a contact made with it (issue #13). */
async function contactMadeWith(dealId: string): Promise<boolean> {
  await waitFor(async () => (await env.DB?.prepare("SELECT 1 AS one FROM attribution_touches WHERE entity = 'deal' AND entity_id = ?").bind(dealId).first()) ?? null, "the deal's credits", 30_000);
  return (await env.DB?.prepare("SELECT 1 AS one FROM made_contacts WHERE entity = 'deal' AND entity_id = ?").bind(dealId).first()) !== null;
}

const withPhone = (items: SandboxLead[], e164: string) => items.filter((i) => i.PHONE?.some((p) => p.VALUE === e164));

async function dealsOf(e164: string) {
  const crm = await sandboxCrm();
  const contacts = withPhone(crm.contacts, e164);
  const deals = crm.deals.filter((d) => contacts.some((c) => c.ID === d.CONTACT_ID));
  return { crm, contacts, deals };
}

describe("a portal without leads", () => {
  it("makes one contact and one deal for a new caller, and puts the next call on that deal's timeline", async () => {
    const phone = uniquePhone();
    const visitorId = await trackedVisitor();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local, visitor_id: visitorId }))).status).toBe(202);
    const first = await waitFor(async () => {
      const found = await dealsOf(phone.e164);
      return found.deals.length ? found : null;
    }, "the contact and deal");
    expect(first.crm.leads).toHaveLength(0);
    expect(first.contacts).toHaveLength(1);
    expect(first.contacts[0]).toMatchObject({ NAME: phone.e164, SOURCE_ID: "CALL", ORIGINATOR_ID: "comagic" });
    expect(first.deals[0]).toMatchObject({ SOURCE_ID: "CALL", STAGE_SEMANTIC_ID: "P", UTM_SOURCE: "yandex", UF_CRM_CM_VISITOR_ID: visitorId });
    expect(await contactMadeWith(String(first.deals[0]?.ID))).toBe(true);

    const second = makeCallSession({ visitor_phone_number: phone.local, utm_source: "google" });
    expect((await postWebhook(second)).status).toBe(202);
    const after = await waitFor(async () => {
      const found = await dealsOf(phone.e164);
      return found.deals[0]?.TIMELINE_COMMENTS.length ? found : null;
    }, "the second call on the deal");
    await waitForQuiet();
    const settled = await dealsOf(phone.e164);
    expect(settled.contacts).toHaveLength(1);
    expect(settled.deals).toHaveLength(1);
    expect(settled.deals[0]?.TIMELINE_COMMENTS[0]).toContain(`CoMagic call session ID: ${second.call_session.id}`);
    // First touch kept: the empty-only rule holds on deals too.
    expect(after.deals[0]?.UTM_SOURCE).toBe("yandex");
    expect(settled.deals[0]?.UF_CRM_COMAGIC_ID).toBe(String(second.call_session.id));
  });

  it("makes no second contact or deal when Bitrix24 made the deal but its answer was lost", async () => {
    const phone = uniquePhone();
    await sandbox("/_sandbox/faults", { targeted: [{ method: "crm.deal.add", kind: "500", times: 1 }] });
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await waitFor(async () => (await dealsOf(phone.e164)).deals.length > 0, "the deal");
    await waitForQuiet();
    // The retry found the deal by its ORIGIN_ID; the next call, while findbycomm is still blind, must find the contact too.
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await waitFor(async () => (await dealsOf(phone.e164)).deals[0]?.TIMELINE_COMMENTS.length, "the second call on the deal");
    await waitForQuiet();
    const { contacts, deals } = await dealsOf(phone.e164);
    expect(contacts).toHaveLength(1);
    expect(deals).toHaveLength(1);
    // Both calls are Bitrix24 calls on the contact, the first one too although its write was only found again.
    expect(contacts[0]?.CALLS).toHaveLength(2);
  });

  it("dead-letters a deal refused for a required field with the fix in words; the replay reuses the contact already made", async () => {
    // FACTS-portals §5: with required-field checks on for applications, the add fails with an empty error code.
    await sandbox("/_sandbox/required-fields", { entity: "deal", fields: ["BEGINDATE"], restCheck: true });
    const phone = uniquePhone();
    const body = makeCallSession({ visitor_phone_number: phone.local });
    expect((await postWebhook(body)).status).toBe(202);
    const letter = await deadLetterWhere((l) => l.job.event?.key === String(body.call_session.id));
    expect(letter.code).toBe("REQUIRED_FIELD_MISSING");
    expect(letter.reason).toContain("REQUIRED_FIELD_DEFAULTS");
    expect((await dealsOf(phone.e164)).contacts).toHaveLength(1);

    await sandbox("/_sandbox/required-fields", { entity: "deal", fields: [], restCheck: false });
    expect((await admin(`/dead-letters/${letter.id}/replay`, { method: "POST" })).status).toBe(202);
    await waitFor(async () => (await dealsOf(phone.e164)).deals.length === 1, "the replayed deal");
    await waitForQuiet();
    expect((await dealsOf(phone.e164)).contacts).toHaveLength(1);
  });

  it("gives a returning client whose deal is won a new deal on the same contact", async () => {
    const phone = uniquePhone();
    const lastYear = new Date(Date.now() - 200 * 86_400_000).toISOString();
    const contactId = (await (await sandbox("/_sandbox/contacts", { fields: { NAME: "Returning", PHONE: [{ VALUE: phone.e164 }] }, createdAt: lastYear })).json()) as { id: number };
    await sandbox("/_sandbox/deals", { fields: { TITLE: "Sold sofa", CONTACT_ID: contactId.id, STAGE_ID: "WON", OPPORTUNITY: 50_000 }, createdAt: lastYear });
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local, visitor_id: await trackedVisitor() }))).status).toBe(202);
    const { contacts, deals } = await waitFor(async () => {
      const found = await dealsOf(phone.e164);
      return found.deals.length === 2 ? found : null;
    }, "a second deal");
    expect(contacts).toHaveLength(1);
    expect(deals.map((d) => d.STAGE_SEMANTIC_ID).sort()).toEqual(["P", "S"]);
    // The report's "contacts made" counts the contacts the worker made, not the one it found.
    const newDeal = deals.find((d) => d.STAGE_SEMANTIC_ID === "P");
    expect(await contactMadeWith(String(newDeal?.ID))).toBe(false);
  });

  it("shows the portal's mode on /health for the admin", async () => {
    expect((await adminHealth()).crmMode).toBe("simple");
  });
});
