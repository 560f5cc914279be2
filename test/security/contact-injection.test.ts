import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { install, openTab } from "../worker/app-support";
import { leadOf, leadsWithPhone, makeCallSession, makeChatSession, postWebhook, postWebsiteForm, sandbox, sandboxLeads, uniquePhone, type SandboxLead } from "../worker/support";

/*
 * Issue #21 item 1: contact injection through the ledger. A form naming a client's email with the attacker's
 * phone lands on the client's lead (as a comment); the ledger must not tie the attacker's phone to that lead, or
 * the attacker's next call would find the client's lead, add the attacker's number to it, and Call would dial the
 * attacker under the client's name. And a ledger hint is only a candidate: a lead that does not hold the number is
 * never taken for the caller's, whatever the ledger says (a hint poisoned before this fix, or stale).
 */

const phonesOf = (lead: SandboxLead) => (lead.PHONE ?? []).map((p) => p.VALUE);

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  expect((await install()).status).toBe(200);
});

describe("a phone a form merely named never leads a call to a client", () => {
  it("form (client's email + attacker's phone), then a call from that phone: the client's lead keeps its own number, the call makes the attacker's own lead", async () => {
    const client = uniquePhone();
    const email = `client${Date.now()}@example.ru`;
    expect((await postWebsiteForm({ name: "Client", phone: client.local, email, submission_id: `c-${email}` })).status).toBe(202);
    const clientLead = await leadOf(client.e164);

    const attacker = uniquePhone();
    expect((await postWebsiteForm({ name: "Client", email, phone: attacker.local, submission_id: `a-${email}` })).status).toBe(202);
    await leadOf(client.e164, (l) => l.TIMELINE_COMMENTS.some((c) => c.includes(attacker.e164)));

    expect((await postWebhook(makeCallSession({ visitor_phone_number: attacker.local, visitor_id: undefined }))).status).toBe(202);
    const attackersLead = await leadOf(attacker.e164);
    expect(attackersLead.ID).not.toBe(clientLead.ID);

    const after = (await sandboxLeads()).find((l) => l.ID === clientLead.ID) as SandboxLead;
    expect(phonesOf(after)).toEqual([client.e164]);
    expect(await (await openTab(String(clientLead.ID), 1)).text()).toContain(`data-phone="${client.e164}"`);
  });
});

// Issue #22: a site chat's contacts are typed by whoever opened it (domain/verified-source.ts); the chat_session
// body names no channel, so it is one.
describe("a phone a site chat merely typed never leads a call to a client", () => {
  it("site chat (client's email + attacker's phone), then a call from that phone: the client's lead keeps its own number, the call makes the attacker's own lead", async () => {
    const client = uniquePhone();
    const email = `chatclient${Date.now()}@example.ru`;
    expect((await postWebsiteForm({ name: "Client", phone: client.local, email, submission_id: `cc-${email}` })).status).toBe(202);
    const clientLead = await leadOf(client.e164);

    const attacker = uniquePhone();
    expect((await postWebhook(makeChatSession({ visitor_email: email, visitor_phone_number: attacker.local, visitor_id: undefined }))).status).toBe(202);
    await leadOf(client.e164, (l) => l.TIMELINE_COMMENTS.length > 0);

    expect((await postWebhook(makeCallSession({ visitor_phone_number: attacker.local, visitor_id: undefined }))).status).toBe(202);
    const attackersLead = await leadOf(attacker.e164);
    expect(attackersLead.ID).not.toBe(clientLead.ID);
    expect(phonesOf((await sandboxLeads()).find((l) => l.ID === clientLead.ID) as SandboxLead)).toEqual([client.e164]);
  });
});

describe("a ledger hint is only a candidate", () => {
  it("a lead the ledger names for a phone it does not hold is left alone: the call makes its own lead", async () => {
    const client = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: client.local, visitor_id: undefined }))).status).toBe(202);
    const clientLead = await leadOf(client.e164);
    // What an older deploy (or a lost race) may have left: the attacker's phone tied to the client's lead.
    const attacker = uniquePhone();
    await env.DB?.prepare("INSERT OR REPLACE INTO contact_keys (portal, contact_key, ref, written_at) VALUES ('default', ?, ?, ?)")
      .bind(`phone:${attacker.e164}`, String(clientLead.ID), new Date().toISOString())
      .run();

    expect((await postWebhook(makeCallSession({ visitor_phone_number: attacker.local, visitor_id: undefined }))).status).toBe(202);
    const attackersLead = await leadOf(attacker.e164);
    expect(attackersLead.ID).not.toBe(clientLead.ID);
    expect(phonesOf((await sandboxLeads()).find((l) => l.ID === clientLead.ID) as SandboxLead)).toEqual([client.e164]);
  });

  it("a lead the ledger names that does hold the number is still found while Bitrix24's duplicate search lags (FACTS.md §7)", async () => {
    await sandbox("/_sandbox/faults", { findbycommLagMs: 30_000 });
    try {
      const caller = uniquePhone();
      expect((await postWebhook(makeCallSession({ visitor_phone_number: caller.local, visitor_id: undefined }))).status).toBe(202);
      const first = await leadOf(caller.e164);
      expect((await postWebhook(makeCallSession({ visitor_phone_number: caller.local, visitor_id: undefined }))).status).toBe(202);
      await leadOf(caller.e164, (l) => l.TIMELINE_COMMENTS.length > 0);
      expect(leadsWithPhone(await sandboxLeads(), caller.e164).map((l) => l.ID)).toEqual([first.ID]);
    } finally {
      await sandbox("/_sandbox/faults", { findbycommLagMs: 0 });
    }
  });
});
