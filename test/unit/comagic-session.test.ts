import { describe, expect, it } from "vitest";
import type { ChatDetails, RequestDetails } from "../../worker/domain/comagic-chat";
import { classifySession, isFinalIgnore, isTargetedCall, type CoMagicSession } from "../../worker/domain/comagic-session";
import { leadEventSchema } from "../../worker/domain/lead-event";
import { EMPTY_SESSION } from "../fixtures/comagic-session";

const rules = { defaultRegion: "RU" as const, minLostCallSeconds: 10, receivedAt: new Date("2026-11-24T10:00:00Z") };

function call(overrides: Partial<Extract<CoMagicSession, { kind: "call" }>> = {}): CoMagicSession {
  return {
    kind: "call",
    id: "100",
    direction: null,
    internal: null,
    lost: false,
    totalSeconds: 60,
    talkSeconds: null,
    waitSeconds: null,
    phone: "8 (912) 345-67-89",
    ...EMPTY_SESSION,
    recordingUrl: null,
    startedByWorker: false,
    ...overrides,
  };
}

function chat(overrides: Partial<Extract<CoMagicSession, { kind: "chat" }>> = {}): CoMagicSession {
  return {
    kind: "chat",
    id: "7",
    name: "Anna",
    phone: null,
    email: null,
    ...EMPTY_SESSION,
    ...overrides,
  };
}

describe("isTargetedCall", () => {
  it.each([
    [false, 0, true],
    [false, null, true],
    [true, 5, false],
    [true, 9, false],
    [true, 10, true],
    [true, null, false],
  ])("lost=%s duration=%s → %s", (lost, seconds, targeted) => {
    expect(isTargetedCall(lost, seconds, 10)).toBe(targeted);
  });
});

describe("classifySession", () => {
  it("accepts a targeted call with its phone in E.164 and the session id as key", () => {
    const result = classifySession(call(), rules);
    expect(result).toMatchObject({ status: "accepted", event: { kind: "call", key: "100", phone: "+79123456789", receivedAt: "2026-11-24T10:00:00.000Z" } });
  });

  it("ignores a lost call shorter than the threshold", () => {
    expect(classifySession(call({ lost: true, totalSeconds: 5 }), rules)).toEqual({ status: "ignored", reason: "untargeted_call" });
  });

  it("treats a call with zero talk time as lost when the notification does not say", () => {
    expect(classifySession(call({ lost: null, talkSeconds: 0, totalSeconds: 4 }), rules)).toEqual({ status: "ignored", reason: "untargeted_call" });
  });

  it("ignores a call whose number cannot be read", () => {
    expect(classifySession(call({ phone: "anonymous" }), rules)).toEqual({ status: "ignored", reason: "unparseable_phone" });
  });

  it("ignores a call whose caller hid the number", () => {
    expect(classifySession(call({ phone: null }), rules)).toEqual({ status: "ignored", reason: "hidden_number" });
  });

  // FACTS-calls §3.3: direction is `in` or `out`; `is_internal` is a separate variable.
  it.each([
    [{ direction: "out" as const }, "outbound_call"],
    [{ internal: true }, "internal_call"],
    [{ direction: "in" as const, internal: true }, "internal_call"],
    [{ startedByWorker: true }, "started_by_worker"],
  ])("ignores a call that is not an inbound client call (%o → %s)", (overrides, reason) => {
    expect(classifySession(call(overrides), rules)).toEqual({ status: "ignored", reason });
  });

  // FACTS-calls §3.2: the "Потерянный звонок" template carries no direction.
  it("counts a call without direction as inbound", () => {
    expect(classifySession(call({ direction: null, internal: null }), rules)).toMatchObject({ status: "accepted" });
  });

  it("counts a call that says nothing of being lost nor of its talk time as answered", () => {
    expect(classifySession(call({ lost: null, talkSeconds: null, totalSeconds: 3 }), rules)).toMatchObject({ status: "accepted", event: { call: { lost: false } } });
  });

  it("carries the answering employee's CoMagic id to the lead event", () => {
    expect(classifySession(call({ employeeId: "25" }), rules)).toMatchObject({ status: "accepted", event: { employeeId: "25" } });
  });

  it("keys chats apart from calls with the same number", () => {
    const result = classifySession(chat({ email: " Anna@Example.RU " }), rules);
    expect(result).toMatchObject({ status: "accepted", event: { key: "chat-7", email: "anna@example.ru", phone: null, call: null } });
  });

  it("keeps a chat with a valid email even when its phone is junk", () => {
    expect(classifySession(chat({ phone: "123", email: "a@b.ru" }), rules)).toMatchObject({ status: "accepted", event: { phone: null } });
  });

  it("ignores a chat with neither a usable phone nor email", () => {
    expect(classifySession(chat({ phone: "123", email: "nope" }), rules)).toEqual({ status: "ignored", reason: "no_contact" });
  });
});

// Chats and requests read from the Data API (issue #22 §2; domain/comagic-chat.ts names the report lines).
describe("classifySession: chats from get.chats_report", () => {
  const details = (overrides: Partial<ChatDetails> = {}): ChatDetails => ({
    channelType: "whatsapp",
    channelName: "Sales WhatsApp",
    status: "succeed",
    initiator: "chat_channel",
    isGroupChat: false,
    pageUrl: null,
    messages: [{ at: "2026-11-24 10:01:00", source: "chat_channel", text: "Is the sofa in stock?", employee: null, file: null }],
    ...overrides,
  });

  it("a closed WhatsApp chat is a lead keyed chat-<id>, with its channel and transcript", () => {
    const result = classifySession(chat({ id: "77", name: null, phone: "79123456789", chat: details() }), rules);
    expect(result).toMatchObject({
      status: "accepted",
      event: { kind: "chat", key: "chat-77", phone: "+79123456789", chat: { channelType: "whatsapp", status: "succeed", omitted: 0, messages: [{ from: "client", text: "Is the sofa in stock?" }] } },
    });
  });

  // RD/data_api__report__get_chats_report.txt l.31-35: new and active chats have no release cause yet.
  it.each(["new", "active"])("a %s chat is not final: ignored as chat_open, to be read again", (status) => {
    const result = classifySession(chat({ phone: "79123456789", chat: details({ status }) }), rules);
    expect(result).toEqual({ status: "ignored", reason: "chat_open" });
    expect(isFinalIgnore("chat_open")).toBe(false);
    expect(isFinalIgnore("no_contact")).toBe(true);
  });

  it.each([
    ["refused (the visitor wrote nothing, l.35)", { status: "refused" }, "no_client_message"],
    ["closed with only an auto-invitation said", { status: "lost", messages: [{ at: null, source: "autoinvite", text: "Can I help?", employee: null, file: null }] }, "no_client_message"],
    ["a group chat (l.83)", { isGroupChat: true }, "group_chat"],
    ["started by an operator (l.36)", { initiator: "operator" }, "outbound_chat"],
  ] as const)("a chat %s makes nothing", (_name, overrides, reason) => {
    expect(classifySession(chat({ phone: "79123456789", chat: details(overrides as Partial<ChatDetails>) }), rules)).toEqual({ status: "ignored", reason });
  });

  it("a chat with no phone and no email makes nothing, however much was said", () => {
    expect(classifySession(chat({ name: null, chat: details({ channelType: "comagic" }) }), rules)).toEqual({ status: "ignored", reason: "no_contact" });
  });

  it("a missed chat (lost, the client wrote) is a lead, like a lost call", () => {
    expect(classifySession(chat({ phone: "79123456789", chat: details({ status: "lost" }) }), rules)).toMatchObject({ status: "accepted", event: { chat: { status: "lost" } } });
  });

  it("a chat whose messages are not read yet is accepted with messages null", () => {
    expect(classifySession(chat({ email: "a@b.ru", chat: details({ messages: null }) }), rules)).toMatchObject({ status: "accepted", event: { chat: { messages: null } } });
  });

  it("the legacy chat_session body (no channel) keeps working: no chat details on the event", () => {
    const result = classifySession(chat({ email: "a@b.ru" }), rules);
    expect(result.status === "accepted" && result.event.chat).toBeUndefined();
  });
});

describe("classifySession: requests from get.offline_messages_report", () => {
  const request = (overrides: Partial<Extract<CoMagicSession, { kind: "request" }>> = {}, details: Partial<RequestDetails> = {}): CoMagicSession => ({
    kind: "request",
    id: "5",
    name: "Anna",
    phone: "8 912 345-67-89",
    email: null,
    ...EMPTY_SESSION,
    visitorId: "901",
    request: { formName: "Callback", formType: "Пользовательская", text: "Call me after 6", pageUrl: "https://shop.example.ru/sofa", comment: null, tech: null, ...details },
    ...overrides,
  });

  it("a request is a lead keyed request-<id>, with its form, text and page", () => {
    expect(classifySession(request(), rules)).toMatchObject({
      status: "accepted",
      event: { kind: "request", key: "request-5", phone: "+79123456789", name: "Anna", request: { formName: "Callback", text: "Call me after 6", pageUrl: "https://shop.example.ru/sofa" } },
    });
  });

  it("a request with neither phone nor email makes nothing", () => {
    expect(classifySession(request({ phone: null, email: "not an email" }), rules)).toEqual({ status: "ignored", reason: "no_contact" });
  });

  it("a technical request makes nothing by default, and a lead when the rules include them", () => {
    expect(classifySession(request({}, { tech: true }), rules)).toEqual({ status: "ignored", reason: "tech_request" });
    expect(classifySession(request({}, { tech: true }), { ...rules, includeTechRequests: true })).toMatchObject({ status: "accepted" });
  });

  it("ignores a website form the worker uploaded to CoMagic itself (DataAPI, ext_id form-…), which has its lead already", () => {
    // FACTS-loop §2: uploaded messages appear with form_type "DataAPI"; ours carry the form's ledger key as ext_id.
    expect(classifySession(request({}, { formType: "DataAPI", extId: "form-6a0d12" }), rules)).toEqual({ status: "ignored", reason: "form_sent_by_worker" });
    // Another system's upload is a client's request like any other.
    expect(classifySession(request({}, { formType: "DataAPI", extId: "crm-77" }), rules)).toMatchObject({ status: "accepted" });
  });

  it("a request's long text is cut so that its queue message still parses", () => {
    const result = classifySession(request({ name: "N".repeat(3000) }, { text: "x".repeat(5000), pageUrl: `https://e.ru/${"p".repeat(3000)}` }), rules);
    expect(result.status).toBe("accepted");
    if (result.status !== "accepted") return;
    expect(result.event.request?.text).toHaveLength(2000);
    expect(leadEventSchema.safeParse(result.event).success).toBe(true);
  });
});
