import { callEvent, formEvent } from "../fixtures/lead-event";
import { describe, expect, it } from "vitest";
import { EMPTY_UTM, type LeadEvent } from "../../worker/domain/lead-event";
import type { LeadSnapshot } from "../../worker/domain/lead-plan";
import { usersByEmployee } from "../../worker/domain/responsible";
import { contactTrust } from "../../worker/domain/verified-source";
import { planWrite, type ClientSnapshot, type CrmLookup, type DealSnapshot, type WriteRules } from "../../worker/domain/write-plan";

// The README's decision table, row by row (FACTS-portals §1 modes, §2 deal stage semantics, §4 repeat leads).
const now = new Date("2026-11-24T12:00:00Z");
const responsible = { userOfEmployee: usersByEmployee({ "7": 25 }), defaultUserId: null, lostCallUserId: null };
const classic: WriteRules = { now, dedupDays: 30, defaultRegion: "RU", mode: "classic", responsible };
const simple: WriteRules = { ...classic, mode: "simple" };

const event = (overrides: Partial<LeadEvent> = {}): LeadEvent =>
  callEvent({ key: "555", sessionId: "555", receivedAt: now.toISOString(), visitorId: "v1", utm: { ...EMPTY_UTM, source: "google" }, employee: "Ivan", employeeId: "25", ...overrides });
const contact = (id: string, companyId: string | null = null): ClientSnapshot => ({ type: "contact", id, companyId, phones: ["+79123456789"], emails: [] });
const company = (id: string): ClientSnapshot => ({ type: "company", id, companyId: null, phones: ["+79123456789"], emails: [] });
const deal = (overrides: Partial<DealSnapshot> = {}): DealSnapshot => ({
  id: "70",
  stageSemantic: "P",
  dateCreate: "2026-11-20T10:00:00+03:00",
  contactId: "5",
  companyId: null,
  utm: EMPTY_UTM,
  visitorId: null,
  ...overrides,
});
const openLead: LeadSnapshot = { id: "10", statusSemantic: "P", dateCreate: "2026-11-20T10:00:00+03:00", name: null, phones: ["+79123456789"], emails: [], utm: EMPTY_UTM, visitorId: null };
const lookup = (overrides: Partial<CrmLookup> = {}): CrmLookup => ({ applied: null, leads: [], clients: [], deals: [], ...overrides });

describe("where an event lands on a classic portal", () => {
  it("an open lead wins over a client's open deal", () => {
    expect(planWrite(event(), lookup({ leads: [openLead], clients: [contact("5")], deals: [deal()] }), classic)).toMatchObject({ action: "update", target: { type: "lead", id: "10" } });
  });

  it("a client with an open deal gets the call on that deal's timeline, no new lead", () => {
    const plan = planWrite(event(), lookup({ clients: [contact("5")], deals: [deal()] }), classic);
    expect(plan).toMatchObject({ action: "update", target: { type: "deal", id: "70" }, client: { type: "contact", id: "5" } });
    expect(plan.action === "update" && plan.fields).toMatchObject({ UF_CRM_COMAGIC_ID: "555", UTM_SOURCE: "google", UF_CRM_CM_VISITOR_ID: "v1" });
    expect(plan.action === "update" && plan.fields).not.toHaveProperty("ASSIGNED_BY_ID");
  });

  it.each([
    ["won", { stageSemantic: "S" }],
    ["lost", { stageSemantic: "F" }],
    ["older than LEAD_DEDUP_DAYS", { dateCreate: "2026-10-01T10:00:00+03:00" }],
    ["another client's", { contactId: "6" }],
  ])("a %s deal is not reused: a new lead linked to the client", (_name, overrides) => {
    const plan = planWrite(event(), lookup({ clients: [contact("5", "9")], deals: [deal(overrides)] }), classic);
    expect(plan.action).toBe("create-lead");
    expect(plan.action === "create-lead" && plan.fields).toMatchObject({ CONTACT_ID: "5", COMPANY_ID: "9", ASSIGNED_BY_ID: "7" });
    expect(plan.action === "create-lead" && plan.fields).not.toHaveProperty("IS_RETURN_CUSTOMER");
  });

  it("a company alone is linked by COMPANY_ID, and its open deal is found too", () => {
    expect(planWrite(event(), lookup({ clients: [company("9")] }), classic)).toMatchObject({ action: "create-lead", fields: { COMPANY_ID: "9" } });
    expect(planWrite(event(), lookup({ clients: [company("9")], deals: [deal({ contactId: null, companyId: "9" })] }), classic)).toMatchObject({
      action: "update",
      target: { type: "deal" },
      client: { type: "company", id: "9" },
    });
  });

  it("nobody known: a plain new lead", () => {
    const plan = planWrite(event(), lookup(), classic);
    expect(plan.action === "create-lead" && plan.fields).not.toHaveProperty("CONTACT_ID");
  });
});

describe("where an event lands on a portal without leads", () => {
  it("leads are ignored; nobody known makes a contact (named by the phone) and a deal", () => {
    const plan = planWrite(event(), lookup({ leads: [openLead] }), simple);
    expect(plan.action).toBe("create-deal");
    if (plan.action !== "create-deal") return;
    expect("fields" in plan.contact && plan.contact.fields).toMatchObject({ NAME: "+79123456789", PHONE: [{ VALUE: "+79123456789", VALUE_TYPE: "WORK" }], ORIGIN_ID: "555", ASSIGNED_BY_ID: "7" });
    expect(plan.fields).toMatchObject({ ORIGIN_ID: "555", UF_CRM_COMAGIC_ID: "555", SOURCE_ID: "CALL", UTM_SOURCE: "google", ASSIGNED_BY_ID: "7" });
  });

  it("a new deal goes to the funnel and stage the settings page chose, else Bitrix24's default (the general funnel's first stage)", () => {
    const wholesale = planWrite(event(), lookup(), { ...simple, dealPipeline: { categoryId: 1, stageId: "C1:PREPARATION" } });
    expect(wholesale.action === "create-deal" && wholesale.fields).toMatchObject({ CATEGORY_ID: 1, STAGE_ID: "C1:PREPARATION" });
    const firstStage = planWrite(event(), lookup(), { ...simple, dealPipeline: { categoryId: 1, stageId: null } });
    expect(firstStage.action === "create-deal" && firstStage.fields).toMatchObject({ CATEGORY_ID: 1 });
    expect(firstStage.action === "create-deal" && firstStage.fields).not.toHaveProperty("STAGE_ID");
    const unset = planWrite(event(), lookup(), simple);
    expect(unset.action === "create-deal" && unset.fields).not.toHaveProperty("CATEGORY_ID");
  });

  it("a known contact gets a new deal when it has no open one, and the open one otherwise", () => {
    expect(planWrite(event(), lookup({ clients: [contact("5", "9")] }), simple)).toMatchObject({ action: "create-deal", contact: { id: "5" }, fields: { CONTACT_ID: "5", COMPANY_ID: "9" } });
    expect(planWrite(event(), lookup({ clients: [contact("5")], deals: [deal()] }), simple)).toMatchObject({ action: "update", target: { type: "deal", id: "70" } });
  });

  it("a form never adds its data to a client's deal: it is noted as unverified", () => {
    const form = event({ kind: "form", phone: "+79990001122", email: "client@example.com", visitorId: "666", employeeId: null });
    const plan = planWrite(form, lookup({ clients: [{ ...contact("5"), emails: ["client@example.com"] }], deals: [deal()] }), simple);
    expect(plan.action === "update" && plan.fields).not.toHaveProperty("UF_CRM_CM_VISITOR_ID");
    expect(plan.action === "update" && plan.comment).toContain("Unverified website form data, not added to the deal: the form also gave phone +79990001122, CoMagic visitor ID 666");
  });

  it("an event written before is skipped, whatever it landed on", () => {
    expect(planWrite(event(), lookup({ applied: { type: "deal", id: "70" } }), simple)).toMatchObject({ action: "skip", target: { type: "deal", id: "70" } });
  });
});

// Issue #21 items 1 and 2: what an anonymous form may change on what exists (worker/domain/verified-source.ts).
describe("a website form on a lead or deal that exists", () => {
  const form = (overrides: Partial<LeadEvent> = {}) =>
    formEvent({
      key: "form-1",
      sessionId: "form-1",
      receivedAt: now.toISOString(),
      phone: "+79990001122",
      email: "client@example.ru",
      visitorId: "666",
      utm: { ...EMPTY_UTM, source: "evil" },
      ...overrides,
    });
  const clientLead: LeadSnapshot = { ...openLead, emails: ["Client@Example.ru"] };

  it("writes only the event key on the lead: no phone, visitor id, UTMs or name", () => {
    const plan = planWrite(form({ name: "Mallory" }), lookup({ leads: [clientLead] }), classic);
    expect(plan.action === "update" && plan.fields).toEqual({ UF_CRM_COMAGIC_ID: "form-1" });
  });

  it("ties to the lead in the ledger only the email the lead already holds, never the phone it merely named", () => {
    expect(planWrite(form(), lookup({ leads: [clientLead] }), classic).ties).toEqual(["email:client@example.ru"]);
  });

  it("writes no UTMs or visitor id on a client's open deal, and ties only what the client holds", () => {
    const client: ClientSnapshot = { ...contact("5"), emails: ["client@example.ru"] };
    const plan = planWrite(form(), lookup({ clients: [client], deals: [deal()] }), simple);
    expect(plan.action === "update" && plan.fields).toEqual({ UF_CRM_COMAGIC_ID: "form-1" });
    expect(plan.ties).toEqual(["email:client@example.ru"]);
  });

  it("fills a lead it creates with everything it gave, and ties all its contacts to it", () => {
    const plan = planWrite(form(), lookup(), classic);
    expect(plan.action === "create-lead" && plan.fields).toMatchObject({ UF_CRM_CM_VISITOR_ID: "666", UTM_SOURCE: "evil", PHONE: [{ VALUE: "+79990001122" }] });
    expect(plan.ties).toEqual(["phone:+79990001122", "email:client@example.ru"]);
  });

  it("found again by its key, it ties its contacts only to what it created, not to what it updated", () => {
    expect(planWrite(form(), lookup({ applied: { type: "lead", id: "10", created: false } }), classic)).toMatchObject({ action: "skip", created: false, ties: [] });
    expect(planWrite(form(), lookup({ applied: { type: "lead", id: "10", created: true } }), classic)).toMatchObject({
      action: "skip",
      created: true,
      ties: ["phone:+79990001122", "email:client@example.ru"],
    });
  });

  it("a CoMagic call still adds its number to the lead and ties it", () => {
    const plan = planWrite(event({ phone: "+79990001122" }), lookup({ leads: [openLead] }), classic);
    expect(plan.action === "update" && plan.fields).toMatchObject({ PHONE: [{ VALUE: "+79990001122" }] });
    expect(plan.ties).toEqual(["phone:+79990001122"]);
  });
});

describe("a ledger hint is only a candidate", () => {
  const attacker = "+79990001122";
  const clientLead: LeadSnapshot = { ...openLead, id: "10", phones: ["+79123456789"] };

  it("a lead only the ledger named, without the caller's number, is not updated: the call makes its own lead", () => {
    const plan = planWrite(event({ phone: attacker }), lookup({ leads: [clientLead], hinted: [{ type: "lead", id: "10" }] }), classic);
    expect(plan.action).toBe("create-lead");
  });

  it("a lead the ledger named that holds the number (in any spelling) is updated: Bitrix24's search may lag", () => {
    const plan = planWrite(event({ phone: "+79123456789" }), lookup({ leads: [{ ...clientLead, phones: ["8 (912) 345-67-89"] }], hinted: [{ type: "lead", id: "10" }] }), classic);
    expect(plan).toMatchObject({ action: "update", target: { type: "lead", id: "10" } });
  });

  it("a contact only the ledger named, without the number, is not the caller's client", () => {
    const plan = planWrite(event({ phone: attacker }), lookup({ clients: [contact("5")], deals: [deal()], hinted: [{ type: "contact", id: "5" }] }), simple);
    expect(plan).toMatchObject({ action: "create-deal", contact: { fields: { PHONE: [{ VALUE: attacker }] } } });
  });
});

// Issue #22 §2: trust is per contact (worker/domain/verified-source.ts). A messenger's own number is as good as a
// caller id; what a visitor typed into a site chat or a request form is not, and neither is the visitor id it
// brings to a lead it reaches only through typed contacts.
describe("chats and requests on a lead or deal that exists: verified per contact", () => {
  const chat = (channelType: string | null, overrides: Partial<LeadEvent> = {}): LeadEvent =>
    event({
      kind: "chat",
      key: "chat-7",
      sessionId: "7",
      call: null,
      employeeId: null,
      visitorId: "666",
      utm: { ...EMPTY_UTM, source: "evil" },
      chat: { channelType, channelName: null, status: "succeed", pageUrl: null, messages: [], omitted: 0 },
      ...overrides,
    });
  const request = (overrides: Partial<LeadEvent> = {}): LeadEvent =>
    event({
      kind: "request",
      key: "request-5",
      sessionId: "5",
      call: null,
      employeeId: null,
      visitorId: "666",
      utm: { ...EMPTY_UTM, source: "evil" },
      request: { formName: "Callback", formType: null, text: null, pageUrl: null, comment: null },
      ...overrides,
    });
  const clientLead: LeadSnapshot = { ...openLead, emails: ["client@example.ru"] };
  const attacker = "+79990001122";

  it.each([
    ["a WhatsApp chat", "whatsapp", true],
    ["a WhatsApp Business (waba) chat", "waba", true],
    ["a Viber chat", "viber", true],
    ["a Telegram chat (a shared contact card or typed, not the sender's address)", "telegram", false],
    ["a VK chat", "vkontakte_groups", false],
    ["an Avito chat", "avito", false],
    ["a website chat", "comagic", false],
    ["a legacy chat_session body (no channel)", null, false],
  ])("the number of %s counts as verified: %s; its email never", (_name, channel, verified) => {
    expect(contactTrust(chat(channel))).toEqual({ phone: verified, email: false });
  });

  it("a call's number is verified; a request's and a form's contacts are not", () => {
    expect(contactTrust(event())).toEqual({ phone: true, email: true });
    expect(contactTrust(request())).toEqual({ phone: false, email: false });
    expect(contactTrust(event({ kind: "form" }))).toEqual({ phone: false, email: false });
  });

  it("a WhatsApp chat from the client's number fills the lead's empty visitor id and UTMs, and may credit its visitor", () => {
    const plan = planWrite(chat("whatsapp"), lookup({ leads: [openLead] }), classic);
    expect(plan).toMatchObject({ action: "update", credit: true, ties: ["phone:+79123456789"], fields: { UF_CRM_CM_VISITOR_ID: "666", UTM_SOURCE: "evil" } });
  });

  it("a site chat typing a client's email and another phone changes nothing but the key, and says so on the timeline", () => {
    const plan = planWrite(chat("comagic", { phone: attacker, email: "client@example.ru", name: "Mallory" }), lookup({ leads: [clientLead] }), classic);
    expect(plan).toMatchObject({ action: "update", credit: false, ties: ["email:client@example.ru"] });
    expect(plan.action === "update" && plan.fields).toEqual({ UF_CRM_COMAGIC_ID: "chat-7" });
    expect(plan.action === "update" && plan.comment).toContain("Unverified chat data, not added to the lead: the chat also gave phone +79990001122, name Mallory, CoMagic visitor ID 666.");
  });

  it("a WhatsApp chat from another number, found by a typed email, does not add its number to the client's lead", () => {
    const plan = planWrite(chat("whatsapp", { phone: attacker, email: "client@example.ru" }), lookup({ leads: [clientLead] }), classic);
    expect(plan).toMatchObject({ action: "update", credit: false, ties: ["email:client@example.ru"], fields: { UF_CRM_COMAGIC_ID: "chat-7" } });
    expect(plan.action === "update" && plan.fields).not.toHaveProperty("PHONE");
    expect(plan.action === "update" && plan.comment).toContain("the chat also gave phone +79990001122");
  });

  it("a WhatsApp chat from the lead's own number speaks for it, but the email typed in it is still only noted", () => {
    const plan = planWrite(chat("whatsapp", { email: "new@example.ru" }), lookup({ leads: [openLead] }), classic);
    expect(plan).toMatchObject({ action: "update", credit: true, ties: ["phone:+79123456789"], fields: { UF_CRM_CM_VISITOR_ID: "666" } });
    expect(plan.action === "update" && plan.fields).not.toHaveProperty("EMAIL");
    expect(plan.action === "update" && plan.comment).toContain("Unverified chat data, not added to the lead: the chat also gave email new@example.ru.");
  });

  it("a request naming a client writes only its key on the client's open deal and credits nothing", () => {
    const client: ClientSnapshot = { ...contact("5"), emails: ["client@example.ru"] };
    const plan = planWrite(request({ phone: attacker, email: "client@example.ru" }), lookup({ clients: [client], deals: [deal()] }), simple);
    expect(plan).toMatchObject({ action: "update", target: { type: "deal" }, credit: false, ties: ["email:client@example.ru"], fields: { UF_CRM_COMAGIC_ID: "request-5" } });
    expect(plan.action === "update" && plan.comment).toContain("Unverified CoMagic request data, not added to the deal: the request also gave phone +79990001122, CoMagic visitor ID 666.");
  });

  it("a request or a site chat that reaches nobody makes its own lead with everything it gave, and credits its visitor there", () => {
    for (const e of [request({ phone: attacker }), chat("comagic", { phone: attacker })]) {
      const plan = planWrite(e, lookup(), classic);
      expect(plan).toMatchObject({ action: "create-lead", credit: true, ties: [`phone:${attacker}`], fields: { PHONE: [{ VALUE: attacker }], UF_CRM_CM_VISITOR_ID: "666" } });
    }
  });

  it("found again by its key, a typed-contact chat ties and credits only what it created", () => {
    expect(planWrite(chat("comagic"), lookup({ applied: { type: "lead", id: "10", created: false } }), classic)).toMatchObject({ action: "skip", ties: [], credit: false });
    expect(planWrite(chat("whatsapp"), lookup({ applied: { type: "lead", id: "10", created: false } }), classic)).toMatchObject({ action: "skip", ties: ["phone:+79123456789"], credit: true });
  });

  it("a call still credits the lead and the deal it lands on", () => {
    expect(planWrite(event(), lookup({ leads: [openLead] }), classic).credit).toBe(true);
    expect(planWrite(event(), lookup({ clients: [contact("5")], deals: [deal()] }), simple).credit).toBe(true);
  });
});
