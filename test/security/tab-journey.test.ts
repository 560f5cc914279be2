import { beforeAll, describe, expect, it } from "vitest";
import { install, openTab, portalHost, seedLead } from "../worker/app-support";
import { bitrixCall, makeCallSession, postWebhook, sandbox, sandboxLeads, uniquePhone, visitorSessions, waitFor } from "../worker/support";

/*
 * Issue #21 item 10: any visitor's browsing through the tab. A user who may edit a lead can type any number into
 * UF_CRM_CM_VISITOR_ID; the tab reads visits with the worker's own Data API key, so it shows a journey only for the
 * visitor id the worker itself wrote to that lead (D1 crm_visitors).
 */

let visitor = 7_800_000 + Math.floor(Math.random() * 100_000);
/** A visitor whose visits entered at a page no one else's did. */
async function visitorWithPage(page: string): Promise<string> {
  visitor += 1;
  await sandbox("/_sandbox/comagic/data", { visitor_sessions: visitorSessions(visitor, ["paid"]).map((s) => ({ ...s, entrance_page: page })) });
  return String(visitor);
}

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
  expect((await install()).status).toBe(200);
});

describe("the tab shows only the journey of a visitor the worker wrote", () => {
  it("a lead the worker enriched shows its visitor's visits; typed over with another id, it shows none of that visitor's", async () => {
    const own = await visitorWithPage("https://shop.example.ru/own-visit");
    const phone = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local, visitor_id: own }))).status).toBe(202);
    const lead = await waitFor(async () => (await sandboxLeads()).find((l) => l.UF_CRM_CM_VISITOR_ID === own && l.UF_CRM_CM_SESSIONS !== ""), "the lead, enriched", 30_000);
    const before = await (await openTab(String(lead.ID), 1)).text();
    expect(before).toContain("https://shop.example.ru/own-visit");

    const stranger = await visitorWithPage("https://shop.example.ru/someone-elses-private-page");
    await bitrixCall("crm.lead.update", { id: lead.ID, fields: { UF_CRM_CM_VISITOR_ID: stranger } });
    const after = await (await openTab(String(lead.ID), 1)).text();
    expect(after).not.toContain("someone-elses-private-page");
    expect(after).toContain("was not set by the integration");
  });

  it("a lead typed in by hand with a visitor id shows no visits, in the user's language", async () => {
    const stranger = await visitorWithPage("https://shop.example.ru/another-private-page");
    const id = await seedLead({ TITLE: "Typed in", UF_CRM_CM_VISITOR_ID: stranger });
    const english = await (await openTab(id, 1)).text();
    expect(english).not.toContain("another-private-page");
    const russian = await (await openTab(id, 1, {}, `?DOMAIN=${portalHost()}&PROTOCOL=0&LANG=ru`)).text();
    expect(russian).toContain("записан не интеграцией");
  });
});
