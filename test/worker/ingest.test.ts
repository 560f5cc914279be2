import { beforeAll, describe, expect, it } from "vitest";
import { bitrixCall, leadsWithPhone, makeCallSession, makeChatSession, postWebhook, sandbox, sandboxLeads, SECRET, uniquePhone, waitFor, waitForQuiet, type SandboxLead } from "./support";

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
});

async function leadFor(phone: string, count = 1): Promise<SandboxLead[]> {
  return waitFor(async () => {
    const leads = leadsWithPhone(await sandboxLeads(), phone);
    return leads.length >= count ? leads : null;
  }, `${count} lead(s) with ${phone}`);
}

describe("a targeted call becomes a Bitrix24 lead", () => {
  it("with the phone in E.164, the UTM tags, the session id and a comment with operator and duration", async () => {
    const phone = uniquePhone();
    const body = makeCallSession({ visitor_phone_number: phone.local });
    expect((await postWebhook(body, { signWith: SECRET })).status).toBe(202);

    const [lead] = await leadFor(phone.e164);
    const id = String(body.call_session.id);
    expect(lead).toMatchObject({
      TITLE: `CoMagic call: ${phone.e164}`,
      SOURCE_ID: "CALL",
      STATUS_ID: "NEW",
      ORIGINATOR_ID: "comagic",
      ORIGIN_ID: id,
      UF_CRM_COMAGIC_ID: id,
      UF_CRM_CM_VISITOR_ID: "7001234",
      UTM_SOURCE: "yandex",
      UTM_MEDIUM: "cpc",
      UTM_CAMPAIGN: "spring_sale",
      UTM_CONTENT: "ad_42",
      UTM_TERM: "sofa",
    });
    expect(lead?.PHONE?.map((p) => p.VALUE)).toEqual([phone.e164]);
    const comments = String(lead?.COMMENTS);
    for (const part of [
      `session ID: ${id}`,
      "Operator: Ivan Petrov",
      "Duration: 95 sec.",
      "Traffic type: paid",
      "Entry page: https://shop.example.ru/sofas",
      "Tags: target, new client",
      "Recording: https://media.comagic.ru/1/record.mp3",
    ]) {
      expect(comments).toContain(part);
    }
  });

  it("only once when CoMagic delivers the same notification three times", async () => {
    const phone = uniquePhone();
    const body = makeCallSession({ visitor_phone_number: phone.local });
    for (let i = 0; i < 3; i++) expect((await postWebhook(body)).status).toBe(202);
    await leadFor(phone.e164);
    await waitForQuiet();
    const leads = leadsWithPhone(await sandboxLeads(), phone.e164);
    expect(leads).toHaveLength(1);
    expect(leads[0]?.TIMELINE_COMMENTS).toEqual([]);
  });

  it("a lost call shorter than MIN_LOST_CALL_SECONDS never reaches Bitrix24", async () => {
    const phone = uniquePhone();
    const res = await postWebhook(makeCallSession({ visitor_phone_number: phone.local, is_lost_call: true, duration_total: 5 }));
    expect(res.status).toBe(200);
    await waitForQuiet();
    expect(leadsWithPhone(await sandboxLeads(), phone.e164)).toEqual([]);
  });
});

describe("who gets the new lead", () => {
  // COMAGIC_EMPLOYEES in test/vitest.config.ts: Bitrix24 user 1 is CoMagic employee 25.
  it("is the Bitrix24 user of the CoMagic employee who answered (employee_id of the call-finished template)", async () => {
    const phone = uniquePhone();
    expect((await postWebhook({ call_session_id: Date.now(), contact_phone_number: phone.local, direction: "in", employee_id: 25, talk_time_duration: 40 })).status).toBe(202);
    const [lead] = await leadFor(phone.e164);
    expect(lead?.ASSIGNED_BY_ID).toBe("1");
  });

  // COMAGIC_MATCH_BY_EMAIL is on in tests: CoMagic employee 26 and Bitrix24 user 2 share maria@shop.example.ru.
  // FACTS-calls §7: get.employees' `email` is filterable and the employee id is notifications' `employee_id`.
  it("is found by the same email in CoMagic (get.employees) and Bitrix24 (user.get) for an employee the map does not list", async () => {
    const phone = uniquePhone();
    expect((await postWebhook({ call_session_id: Date.now(), contact_phone_number: phone.local, direction: "in", employee_id: 26, talk_time_duration: 40 })).status).toBe(202);
    const [lead] = await leadFor(phone.e164);
    expect(lead?.ASSIGNED_BY_ID).toBe("2");
  });
});

describe("a lost call", () => {
  // FACTS-portals §6: crm.activity.todo.add is not idempotent, so the worker keeps its own record.
  it("leaves its lead one call-back to-do, due LOST_CALL_TODO_MINUTES later, even when CoMagic sends it twice", async () => {
    const phone = uniquePhone();
    const body = makeCallSession({ visitor_phone_number: phone.local, is_lost_call: true, duration_total: 40 });
    expect((await postWebhook(body)).status).toBe(202);
    const [lead] = await leadFor(phone.e164);
    await waitForQuiet();
    expect((await postWebhook(body)).status).toBe(202);
    await waitForQuiet();
    const todos = (leadsWithPhone(await sandboxLeads(), phone.e164)[0] as unknown as { TODOS: { title: string; deadline: string }[] }).TODOS;
    expect(todos).toHaveLength(1);
    expect(todos[0]?.title).toBe(`Call back ${phone.e164}`);
    expect(Date.parse(todos[0]?.deadline ?? "") - Date.now()).toBeGreaterThan(50 * 60_000);
    expect(lead?.ID).toBeDefined();
  });

  it("and an answered call leave no to-do", async () => {
    const phone = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await leadFor(phone.e164);
    await waitForQuiet();
    expect((leadsWithPhone(await sandboxLeads(), phone.e164)[0] as unknown as { TODOS: unknown[] }).TODOS).toEqual([]);
  });
});

describe("a second contact from the same person", () => {
  it("updates their open lead: one phone, status untouched, first-touch UTMs kept, a timeline comment added", async () => {
    const phone = uniquePhone();
    const first = makeCallSession({ visitor_phone_number: phone.local, utm_term: null });
    await postWebhook(first);
    const [created] = await leadFor(phone.e164);
    // A manager has started working the lead.
    await bitrixCall("crm.lead.update", { id: created?.ID, fields: { STATUS_ID: "IN_PROCESS" } });

    const second = makeCallSession({
      visitor_phone_number: `+7 ${phone.e164.slice(2, 5)} ${phone.e164.slice(5, 8)} ${phone.e164.slice(8, 10)} ${phone.e164.slice(10)}`,
      utm_source: "google",
      utm_term: "cheap sofa",
      employee_full_name: "Maria Ivanova",
    });
    await postWebhook(second);
    const lead = await waitFor(async () => {
      const [l] = leadsWithPhone(await sandboxLeads(), phone.e164);
      return l?.UF_CRM_COMAGIC_ID === String(second.call_session.id) ? l : null;
    }, "the update");

    expect(leadsWithPhone(await sandboxLeads(), phone.e164)).toHaveLength(1);
    expect(lead.PHONE).toHaveLength(1);
    expect(lead.STATUS_ID).toBe("IN_PROCESS");
    expect(lead.UTM_SOURCE).toBe("yandex");
    expect(lead.UTM_TERM).toBe("cheap sofa");
    expect(lead.ORIGIN_ID).toBe(String(first.call_session.id));
    expect(lead.TIMELINE_COMMENTS).toHaveLength(1);
    expect(lead.TIMELINE_COMMENTS[0]).toContain("Operator: Maria Ivanova");

    // The first notification arrives again after the update: nothing changes.
    await postWebhook(first);
    await waitForQuiet();
    const [after] = leadsWithPhone(await sandboxLeads(), phone.e164);
    expect(after?.TIMELINE_COMMENTS).toHaveLength(1);
    expect(after?.UF_CRM_COMAGIC_ID).toBe(String(second.call_session.id));
  });

  it("finds a lead a manager typed in by hand in another format", async () => {
    const phone = uniquePhone();
    const national = phone.e164.slice(2);
    await sandbox("/_sandbox/leads", { fields: { TITLE: "Walk-in", PHONE: [{ VALUE: `8${national}`, VALUE_TYPE: "MOBILE" }] } });
    await postWebhook(makeCallSession({ visitor_phone_number: phone.e164 }));
    const lead = await waitFor(async () => {
      const [l] = leadsWithPhone(await sandboxLeads(), phone.e164);
      return l?.TIMELINE_COMMENTS.length ? l : null;
    }, "the hand-made lead to be updated");
    expect(lead.TITLE).toBe("Walk-in");
    expect(lead.PHONE?.map((p) => p.VALUE)).toEqual([`8${national}`]);
  });

  it.each([
    ["a closed (junk) lead", { STATUS_ID: "JUNK" }, undefined],
    ["a lead older than LEAD_DEDUP_DAYS", {}, new Date(Date.now() - 31 * 86_400_000).toISOString()],
  ])("gets a new lead instead of reopening %s", async (_name, extra, createdAt) => {
    const phone = uniquePhone();
    await sandbox("/_sandbox/leads", { fields: { TITLE: "Earlier", PHONE: [{ VALUE: phone.e164, VALUE_TYPE: "WORK" }], ...extra }, createdAt });
    await postWebhook(makeCallSession({ visitor_phone_number: phone.local }));
    const leads = await leadFor(phone.e164, 2);
    expect(leads.map((l) => l.TITLE)).toEqual(["Earlier", `CoMagic call: ${phone.e164}`]);
  });

  it("lands on the same lead when a chat with an email is followed by a call", async () => {
    const phone = uniquePhone();
    const chat = makeChatSession({ visitor_phone_number: phone.e164, visitor_email: "Anna@Example.ru" });
    expect((await postWebhook(chat)).status).toBe(202);
    const [lead] = await leadFor(phone.e164);
    expect(lead).toMatchObject({ TITLE: "CoMagic chat: Anna", SOURCE_ID: "WEB", NAME: "Anna", UF_CRM_COMAGIC_ID: `chat-${chat.chat_session.id}` });
    expect(lead?.EMAIL?.map((e) => e.VALUE)).toEqual(["anna@example.ru"]);

    await postWebhook(makeCallSession({ visitor_phone_number: phone.local }));
    const updated = await waitFor(async () => {
      const [l] = leadsWithPhone(await sandboxLeads(), phone.e164);
      return l?.TIMELINE_COMMENTS.length ? l : null;
    }, "the call to update the chat lead");
    expect(updated.ID).toBe(lead?.ID);
  });

  it("a chat with only an email finds the lead by email", async () => {
    const email = `client${Date.now()}@example.ru`;
    await postWebhook(makeChatSession({ visitor_email: email }));
    await waitFor(async () => (await sandboxLeads()).find((l) => l.EMAIL?.some((e) => e.VALUE === email)), "the chat lead");
    await postWebhook(makeChatSession({ visitor_email: email.toUpperCase(), visitor_name: "Anna K." }));
    const lead = await waitFor(async () => {
      const l = (await sandboxLeads()).find((x) => x.EMAIL?.some((e) => e.VALUE === email));
      return l?.TIMELINE_COMMENTS.length ? l : null;
    }, "the second chat to update the lead");
    expect(lead.EMAIL).toHaveLength(1);
    expect((await sandboxLeads()).filter((l) => l.EMAIL?.some((e) => e.VALUE === email))).toHaveLength(1);
  });
});
