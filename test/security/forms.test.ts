import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { handleLeadBatch } from "../../worker/jobs/consumer";
import { consumerDeps } from "../worker/consumer-support";
import { type FollowUpJob, leadJob } from "../../worker/jobs/schema";
import { formEvent } from "../fixtures/lead-event";
import { SECRET_FIELDS } from "../fixtures/secret-fields";
import { openTab, install } from "../worker/app-support";
import { leadOf, leadsWithPhone, makeCallSession, postWebhook, sandbox, sandboxLeads, uniquePhone, waitFor, waitForQuiet, workerWithEnv } from "../worker/support";

/* Attacks through POST /forms, which anyone on the internet can call. */

let ip = 0;
function postForm(fields: Record<string, string>, headers: Record<string, string> = { origin: "https://shop.example.ru" }, fetcher?: (r: Request) => Promise<Response>) {
  const request = new Request("http://worker.test/forms", {
    method: "POST",
    headers: { "content-type": "application/json", "cf-connecting-ip": `203.0.113.${++ip}`, ...headers },
    body: JSON.stringify(fields),
  });
  return fetcher ? fetcher(request) : workerWithEnv({})(request);
}

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  expect((await install()).status).toBe(200);
});

describe("a form cannot inject contact data into an existing lead", () => {
  it("naming a client's email, it adds no phone and no visitor id to their lead: they go on the timeline as unverified", async () => {
    const client = uniquePhone();
    const email = `client${Date.now()}@example.ru`;
    expect((await postForm({ name: "Client", phone: client.local, email, submission_id: `c-${email}` })).status).toBe(202);
    const lead = await leadOf(client.e164);
    const attacker = uniquePhone();
    expect((await postForm({ name: "Client", email, phone: attacker.local, comagic_visitor_id: "666", submission_id: `a-${email}` })).status).toBe(202);
    const updated = await leadOf(client.e164, (l) => l.TIMELINE_COMMENTS.length > 0);
    expect(updated.ID).toBe(lead.ID);
    expect(updated.PHONE?.map((p) => p.VALUE)).toEqual([client.e164]);
    expect(updated.UF_CRM_CM_VISITOR_ID).toBe("");
    expect(updated.TIMELINE_COMMENTS[0]).toContain(`Unverified website form data, not added to the lead: the form also gave phone ${attacker.e164}, CoMagic visitor ID 666.`);
    expect(leadsWithPhone(await sandboxLeads(), attacker.e164)).toEqual([]);
  });

  it("naming a client's phone, it adds no email to their lead, and Call still dials only the client's number", async () => {
    const client = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: client.local, visitor_id: undefined }))).status).toBe(202);
    const lead = await leadOf(client.e164);
    expect((await postForm({ phone: client.local, email: "attacker@evil.example", submission_id: `p-${client.e164}` })).status).toBe(202);
    const updated = await leadOf(client.e164, (l) => l.TIMELINE_COMMENTS.length > 0);
    expect(updated.EMAIL).toBeUndefined();
    expect(updated.TIMELINE_COMMENTS[0]).toContain("the form also gave email attacker@evil.example");
    expect(await (await openTab(lead.ID, 1)).text()).toContain(`data-phone="${client.e164}"`);
  });

  // Issue #22: a site chat's contacts are typed by whoever opened it, like a form's (domain/verified-source.ts).
  // The chat_session body names no channel, so it is a site chat: authenticated, yet its phone is not vouched for.
  it("a site chat typing a client's email adds no phone to their lead: the phone is noted as unverified chat data", async () => {
    const email = `chat${Date.now()}@example.ru`;
    expect((await postWebhook({ event_type: "chat_session_completed", chat_session: { id: Date.now(), visitor_email: email, visitor_name: "Anna" } })).status).toBe(202);
    const lead = await waitFor(async () => (await sandboxLeads()).find((l) => l.EMAIL?.some((e) => e.VALUE === email)), "the chat's lead");
    const attacker = uniquePhone();
    expect((await postWebhook({ event_type: "chat_session_completed", chat_session: { id: Date.now() + 1, visitor_email: email, visitor_phone_number: attacker.local } })).status).toBe(202);
    const updated = await waitFor(async () => (await sandboxLeads()).find((l) => l.ID === lead.ID && l.TIMELINE_COMMENTS.length > 0), "the second chat's comment");
    expect(updated.PHONE ?? []).toEqual([]);
    expect(updated.TIMELINE_COMMENTS[0]).toContain(`Unverified chat data, not added to the lead: the chat also gave phone ${attacker.e164}`);
    expect(leadsWithPhone(await sandboxLeads(), attacker.e164)).toEqual([]);
  });
});

describe("/forms fails closed", () => {
  it("without ALLOWED_ORIGINS, refuses a request that sends no Origin at all (a script, not a browser)", async () => {
    const res = await postForm({ phone: uniquePhone().local }, {}, workerWithEnv({ ALLOWED_ORIGINS: "" }));
    expect(res.status).toBe(403);
  });

  it("without FORM_RATE_LIMITER, answers 503 instead of taking unlimited forms", async () => {
    const res = await postForm({ phone: uniquePhone().local }, undefined, workerWithEnv({ FORM_RATE_LIMITER: undefined }));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: "misconfigured" });
  });

  it("drops a comagic_visitor_id that is not a CoMagic id (digits), so nothing is asked of CoMagic for it", async () => {
    const phone = uniquePhone();
    expect((await postForm({ phone: phone.local, comagic_visitor_id: "1 OR 1=1", submission_id: `v-${phone.e164}` })).status).toBe(202);
    expect((await leadOf(phone.e164)).UF_CRM_CM_VISITOR_ID).toBe("");
  });

  it("drops fields whose names say they carry secrets, even when a site posts them itself", async () => {
    const phone = uniquePhone();
    const fields = { phone: phone.local, password: "hunter2", card_number: "4111111111111111", cvv: "123", csrf_token: "abc", otp: "000111", city: "Kazan", submission_id: `s-${phone.e164}` };
    expect((await postForm(fields)).status).toBe(202);
    const comments = String((await leadOf(phone.e164)).COMMENTS);
    expect(comments).toContain("city: Kazan");
    for (const secret of ["hunter2", "4111111111111111", "123\\n", "abc", "000111"]) expect(comments).not.toContain(secret);
  });

  // Issue #21 item 7: names the first rule let through, posted straight to /forms (no snippet in between).
  it("drops creditcard, cc_number, ccnum, sms_code, security_code, verification_code, pwd and api_key too", async () => {
    const phone = uniquePhone();
    expect((await postForm({ phone: phone.local, ...SECRET_FIELDS, city: "Kazan", submission_id: `m-${phone.e164}` })).status).toBe(202);
    const lead = await leadOf(phone.e164);
    expect(String(lead.COMMENTS)).toContain("city: Kazan");
    expect(JSON.stringify(lead)).not.toMatch(/4111|5500|3400|sms-482913|sec-737|verify-5521|hunter2|sk_live/);
  });

  it("leaves secrets out of the form's id (a hash of its content), so the id cannot be checked against guessed PINs", async () => {
    const phone = uniquePhone();
    const post = async (pin: string) => ((await (await postForm({ phone: phone.local, pin, submission_id: `p-${phone.e164}` })).json()) as { id: string }).id;
    expect(await post("1111")).toBe(await post("2222"));
  });

  it("keeps only attribution parameters of the page and referrer URLs (no reset-link tokens or session ids)", async () => {
    const phone = uniquePhone();
    await postForm({
      phone: phone.local,
      page_url: "https://shop.example.ru/reset?token=s3cr3t&utm_source=ya&gclid=g1#frag",
      referrer: "https://mail.example/inbox?sid=999",
      submission_id: `u-${phone.e164}`,
    });
    const lead = await leadOf(phone.e164);
    expect(lead.SOURCE_DESCRIPTION).toBe("https://shop.example.ru/reset?utm_source=ya&gclid=g1");
    expect(String(lead.COMMENTS)).not.toContain("s3cr3t");
    expect(String(lead.COMMENTS)).not.toContain("sid=999");
  });

  it("enriches no more forms a minute than FORM_ENRICH_LIMITER allows, whoever posts them", async () => {
    const sent: FollowUpJob[] = [];
    const form = (i: number) => {
      const key = `form-flood-${Date.now()}-${i}`;
      return leadJob("default", formEvent({ key, sessionId: key, receivedAt: new Date().toISOString(), phone: uniquePhone().e164, visitorId: String(9_000_000 + i) }), "flood");
    };
    let allowed = 3;
    const batch = createMessageBatch(
      "comagic-lead-jobs",
      Array.from({ length: 5 }, (_, i) => ({ id: `f${i}`, timestamp: new Date(), attempts: 1, body: form(i) })),
    );
    await handleLeadBatch(
      batch,
      consumerDeps({ followUps: { enrichment: true, send: async (jobs) => void sent.push(...jobs) }, formEnrichLimit: { limit: async () => ({ success: allowed-- > 0 }) } }),
    );
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toHaveLength(5);
    expect(sent.filter((j) => j.type === "lead.enrich")).toHaveLength(3);
    await waitForQuiet();
  });
});
