import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forgetPortalSettings, makeCallSession, postWebhook, sandbox, sandboxCrm, uniquePhone, waitFor, waitForQuiet } from "./support";

/*
 * A classic portal whose callers are already clients (FACTS-portals §4): findbycomm without entity_type
 * answers LEAD, CONTACT and COMPANY (FACTS.md §2.5); crm.deal.list filters a client's deals by CONTACT_ID or
 * COMPANY_ID (FACTS-portals §2). Bitrix24 itself marks a lead naming a client as a repeat lead when the
 * portal's repeat-lead mode is on (the sandbox has it on).
 */
const monthsAgo = new Date(Date.now() - 90 * 86_400_000).toISOString();

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await forgetPortalSettings();
});
afterAll(async () => {
  await sandbox("/_sandbox/reset", {});
});

async function seed(entity: "contacts" | "companies" | "deals", fields: Record<string, unknown>): Promise<number> {
  return ((await (await sandbox(`/_sandbox/${entity}`, { fields, createdAt: monthsAgo })).json()) as { id: number }).id;
}

describe("a caller who is already a client", () => {
  it("with an open deal: the call goes on that deal's timeline, and no lead is made", async () => {
    const phone = uniquePhone();
    const contact = await seed("contacts", { NAME: "Irina", PHONE: [{ VALUE: phone.e164 }] });
    // Open for a week: inside LEAD_DEDUP_DAYS.
    const deal = (
      (await (
        await sandbox("/_sandbox/deals", { fields: { TITLE: "Kitchen", CONTACT_ID: contact, STAGE_ID: "PREPARATION" }, createdAt: new Date(Date.now() - 7 * 86_400_000).toISOString() })
      ).json()) as { id: number }
    ).id;
    const body = makeCallSession({ visitor_phone_number: phone.local });
    expect((await postWebhook(body)).status).toBe(202);
    // The comment and the field update are separate writes (comments first): wait for both.
    const onDeal = await waitFor(
      async () => (await sandboxCrm()).deals.find((d) => d.ID === String(deal) && d.TIMELINE_COMMENTS.length > 0 && d.UF_CRM_COMAGIC_ID === String(body.call_session.id)),
      "the call on the deal",
    );
    await waitForQuiet();
    expect(onDeal.TIMELINE_COMMENTS[0]).toContain(`CoMagic call session ID: ${body.call_session.id}`);
    expect(onDeal).toMatchObject({ UF_CRM_COMAGIC_ID: String(body.call_session.id), UTM_SOURCE: "yandex" });
    const crm = await sandboxCrm();
    expect(crm.leads.filter((l) => l.PHONE?.some((p) => p.VALUE === phone.e164))).toEqual([]);
    expect(crm.contacts.filter((c) => c.PHONE?.some((p) => p.VALUE === phone.e164))).toHaveLength(1);
  });

  it("without an open deal: a new lead linked to the contact and its company, which Bitrix24 marks a repeat lead", async () => {
    const phone = uniquePhone();
    const company = await seed("companies", { TITLE: "Mebel LLC" });
    const contact = await seed("contacts", { NAME: "Pavel", COMPANY_ID: company, PHONE: [{ VALUE: phone.e164 }] });
    await seed("deals", { TITLE: "Old order", CONTACT_ID: contact, STAGE_ID: "WON" });
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    const lead = await waitFor(async () => (await sandboxCrm()).leads.find((l) => l.CONTACT_ID === String(contact)), "the repeat lead");
    expect(lead).toMatchObject({ COMPANY_ID: String(company), IS_RETURN_CUSTOMER: "Y", SOURCE_ID: "CALL" });
  });

  it("known only as a company: a new lead with COMPANY_ID", async () => {
    const phone = uniquePhone();
    const company = await seed("companies", { TITLE: "Divan Ltd", PHONE: [{ VALUE: phone.e164 }] });
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    const lead = await waitFor(async () => (await sandboxCrm()).leads.find((l) => l.COMPANY_ID === String(company)), "the lead of the company");
    expect(lead.CONTACT_ID).toBeNull();
  });
});
