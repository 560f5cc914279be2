import { callEvent } from "../fixtures/lead-event";
import { describe, expect, it } from "vitest";
import { EMPTY_UTM, type LeadEvent } from "../../worker/domain/lead-event";
import { newLeadFields, pickOpenLead, updateLeadFields, type LeadSnapshot } from "../../worker/domain/lead-plan";
import { planWrite } from "../../worker/domain/write-plan";
import { usersByEmployee } from "../../worker/domain/responsible";
import { crmTexts } from "../../worker/i18n/crm-texts";

const now = new Date("2026-11-24T12:00:00Z");
const rules = { now, dedupDays: 30, defaultRegion: "RU" as const, mode: "classic" as const };
const found = (leads: LeadSnapshot[], applied: string | null = null) => ({ applied: applied ? { type: "lead" as const, id: applied } : null, leads, clients: [], deals: [] });

const event = (overrides: Partial<LeadEvent> = {}): LeadEvent =>
  callEvent({
    key: "555",
    sessionId: "555",
    receivedAt: now.toISOString(),
    visitorId: "v1",
    utm: { ...EMPTY_UTM, source: "google", term: "sofa" },
    employee: "Ivan",
    trafficType: "paid",
    ...overrides,
  });

function lead(overrides: Partial<LeadSnapshot> = {}): LeadSnapshot {
  return {
    id: "10",
    statusSemantic: "P",
    dateCreate: "2026-11-20T10:00:00+03:00",
    name: null,
    phones: ["8 (912) 345-67-89"],
    emails: [],
    utm: { ...EMPTY_UTM, source: "yandex" },
    visitorId: null,
    ...overrides,
  };
}

describe("pickOpenLead", () => {
  it("takes the most recently created open lead inside the window", () => {
    const picked = pickOpenLead([lead({ id: "1", dateCreate: "2026-11-01T00:00:00+03:00" }), lead({ id: "2", dateCreate: "2026-11-22T00:00:00+03:00" })], rules);
    expect(picked?.id).toBe("2");
  });

  it.each([
    ["converted", { statusSemantic: "S" }],
    ["junk", { statusSemantic: "F" }],
    ["older than the window", { dateCreate: "2026-10-24T00:00:00+03:00" }],
    ["without a creation date", { dateCreate: null }],
  ])("skips a lead that is %s", (_name, overrides) => {
    expect(pickOpenLead([lead(overrides)], rules)).toBeNull();
  });
});

describe("newLeadFields", () => {
  it("fills the lead the way the seed does, with our idempotency keys", () => {
    expect(newLeadFields(event())).toMatchObject({
      TITLE: "CoMagic call: +79123456789",
      PHONE: [{ VALUE: "+79123456789", VALUE_TYPE: "WORK" }],
      SOURCE_ID: "CALL",
      STATUS_ID: "NEW",
      ORIGINATOR_ID: "comagic",
      ORIGIN_ID: "555",
      UF_CRM_COMAGIC_ID: "555",
      UF_CRM_CM_VISITOR_ID: "v1",
      UTM_SOURCE: "google",
      UTM_TERM: "sofa",
    });
  });

  it("leaves out fields it has no value for", () => {
    const fields = newLeadFields(event({ visitorId: null, utm: EMPTY_UTM }));
    expect(Object.keys(fields).filter((k) => k.startsWith("UTM_") || k === "UF_CRM_CM_VISITOR_ID")).toEqual([]);
  });
});

describe("updateLeadFields", () => {
  it("never sends the status, a phone the lead has in another spelling, or a first-touch UTM already set", () => {
    const fields = updateLeadFields(event(), lead(), "RU");
    expect(fields).toEqual({ UF_CRM_COMAGIC_ID: "555", UF_CRM_CM_VISITOR_ID: "v1", UTM_TERM: "sofa" });
  });

  it("adds a new phone and email, and the name when the lead has none", () => {
    const fields = updateLeadFields(event({ phone: "+79990001122", email: "a@b.ru", name: "Anna" }), lead(), "RU");
    expect(fields).toMatchObject({ PHONE: [{ VALUE: "+79990001122", VALUE_TYPE: "WORK" }], EMAIL: [{ VALUE: "a@b.ru", VALUE_TYPE: "WORK" }], NAME: "Anna" });
  });

  it("keeps an email the lead has in other letter case, and a visitor id already set", () => {
    const fields = updateLeadFields(event({ email: "a@b.ru" }), lead({ emails: ["A@B.RU"], visitorId: "v0" }), "RU");
    expect(fields).not.toHaveProperty("EMAIL");
    expect(fields).not.toHaveProperty("UF_CRM_CM_VISITOR_ID");
  });
});

describe("planWrite on a classic portal, person known only by leads", () => {
  it("does nothing when a lead already carries this event's key", () => {
    expect(planWrite(event(), found([lead()], "42"), rules)).toMatchObject({ action: "skip", target: { type: "lead", id: "42" } });
  });

  it("creates a lead when no open lead shares a contact", () => {
    expect(planWrite(event(), found([lead({ statusSemantic: "S" })]), rules).action).toBe("create-lead");
  });

  it("updates the open lead with a timeline comment", () => {
    const plan = planWrite(event(), found([lead()]), rules);
    expect(plan).toMatchObject({ action: "update", target: { type: "lead", id: "10" } });
    expect(plan.action === "update" && plan.comment).toContain("CoMagic call session ID: 555");
  });
});

describe("who a new lead is assigned to", () => {
  const responsible = { userOfEmployee: usersByEmployee({ "7": 25 }), defaultUserId: "3", lostCallUserId: "9" };
  const event = callEvent;

  it.each([
    ["the Bitrix24 user of the CoMagic employee who answered", { employeeId: "25" }, "7"],
    ["DEFAULT_RESPONSIBLE_ID when the employee maps to no user", { employeeId: "99" }, "3"],
    ["LOST_CALL_RESPONSIBLE_ID for a call nobody answered", { employeeId: "25", call: { lost: true, totalSeconds: 40, talkSeconds: 0, waitSeconds: 40 } }, "9"],
  ] as const)("is %s", (_name, overrides, user) => {
    expect(newLeadFields(event(overrides as Partial<LeadEvent>), {}, responsible).ASSIGNED_BY_ID).toBe(user);
  });

  it("is left to Bitrix24 when nothing is configured, and an existing lead keeps its own", () => {
    expect(newLeadFields(event({ employeeId: "25" }), {}, null)).not.toHaveProperty("ASSIGNED_BY_ID");
    const lead = {
      id: "5",
      statusSemantic: "P",
      dateCreate: "2026-11-20T10:00:00+03:00",
      name: null,
      phones: [],
      emails: [],
      utm: { source: null, medium: null, campaign: null, content: null, term: null },
      visitorId: null,
    };
    const plan = planWrite(
      event({ employeeId: "25" }),
      { applied: null, leads: [lead], clients: [], deals: [] },
      { now: new Date("2026-11-24T10:00:00Z"), dedupDays: 30, defaultRegion: "RU", responsible, mode: "classic" },
    );
    expect(plan.action === "update" && plan.fields).not.toHaveProperty("ASSIGNED_BY_ID");
  });
});

describe("what the worker writes into Bitrix24, in CRM_LANGUAGE", () => {
  it("titles and comments a new lead in Russian when CRM_LANGUAGE is ru (the default), in English when en", () => {
    const call = event({ kind: "call", phone: "+79125554433" });
    const ru = newLeadFields(call, {}, null, crmTexts("ru"));
    expect(ru.TITLE).toBe("Звонок CoMagic: +79125554433");
    expect(String(ru.COMMENTS)).toContain("Сотрудник:");
    expect(newLeadFields(call, {}, null, crmTexts("en")).TITLE).toBe("CoMagic call: +79125554433");
  });

  it("titles a chat by its channel and a CoMagic request by its form, in Russian and in English", () => {
    const chat = event({ kind: "chat", call: null, phone: "+79125554433", chat: { channelType: "whatsapp", channelName: null, status: "succeed", pageUrl: null, messages: null, omitted: 0 } });
    expect(newLeadFields(chat, {}, null, crmTexts("ru")).TITLE).toBe("Чат CoMagic (WhatsApp): +79125554433");
    expect(newLeadFields(chat, {}, null, crmTexts("en")).TITLE).toBe("CoMagic chat (WhatsApp): +79125554433");
    const request = event({ kind: "request", call: null, request: { formName: "Обратный звонок", formType: null, text: "Перезвоните", pageUrl: null, comment: null } });
    const ru = newLeadFields(request, {}, null, crmTexts("ru"));
    expect(ru).toMatchObject({ TITLE: "Заявка CoMagic: Обратный звонок", SOURCE_ID: "WEBFORM" });
    expect(String(ru.COMMENTS)).toContain("Текст: Перезвоните");
    expect(newLeadFields(request, {}, null, crmTexts("en")).TITLE).toBe("CoMagic request: Обратный звонок");
  });
});
