import { describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { parseNotification } from "../../worker/comagic/notification-schema";

const seedCall = {
  event_type: "call_session_completed",
  call_session: {
    id: 2427195081,
    is_lost_call: false,
    duration_total: 95,
    visitor_phone_number: "79123456789",
    visitor_id: 17258569,
    utm_source: "yandex",
    utm_medium: "cpc",
    utm_campaign: "sale",
    utm_content: null,
    employee_full_name: "Ivan Petrov",
    traffic_type: "paid",
    site_domain_url: "https://shop.example.ru/",
    tags: ["target"],
    file_link: "https://media.comagic.ru/1/2",
  },
};

function session(body: unknown) {
  const n = parseNotification(body);
  if (n.type !== "session") throw new Error(`expected a session, got ${n.type}`);
  return n.session;
}

describe("parseNotification reads", () => {
  it("the seed's call_session", () => {
    expect(session(seedCall)).toEqual({
      kind: "call",
      id: "2427195081",
      direction: null,
      internal: null,
      startedByWorker: false,
      employeeId: null,
      lost: false,
      totalSeconds: 95,
      talkSeconds: null,
      waitSeconds: null,
      phone: "79123456789",
      visitorId: "17258569",
      utm: { source: "yandex", medium: "cpc", campaign: "sale", content: null, term: null },
      employee: "Ivan Petrov",
      trafficType: "paid",
      entryPage: "https://shop.example.ru/",
      tags: ["target"],
      recordingUrl: "https://media.comagic.ru/1/2",
    });
  });

  it("CoMagic's own field names as aliases of the seed's", () => {
    const s = session({
      event_type: "call_session_completed",
      call_session: { id: "5", is_lost: "true", total_duration: "30", contact_phone_number: "79123456789", channel: "organic", site_domain_name: "shop.example.ru" },
    });
    expect(s).toMatchObject({ lost: true, totalSeconds: 30, phone: "79123456789", trafficType: "organic", entryPage: "shop.example.ru" });
  });

  it("the flat template, where CoMagic substitutes numbers as strings and lists as strings", () => {
    const s = session({
      event_type: "call_session_completed",
      call_session_id: "4000123456",
      contact_phone_number: 79123456789,
      talk_time_duration: "42",
      total_time_duration: "57",
      wait_time_duration: 15,
      tag_names: "target, repeat ,",
      visitor_id: null,
      utm_source: "google",
    });
    expect(s).toMatchObject({ kind: "call", id: "4000123456", lost: null, totalSeconds: 57, talkSeconds: 42, waitSeconds: 15, phone: "79123456789", tags: ["target", "repeat"], visitorId: null });
  });

  it("a flat call's facts only, leaving lost to the domain rule, its duration summed from the parts", () => {
    const s = session({ event_type: "call_session_completed", call_session_id: 1, contact_phone_number: "79123456789", talk_time_duration: 0, wait_time_duration: "8" });
    expect(s).toMatchObject({ lost: null, talkSeconds: 0, totalSeconds: 8 });
  });

  // samples/notifications_templates_collected.md §1: the "Завершение звонка" template with direction and employee_id.
  it("direction, is_internal and employee_id of a real call-finished template", () => {
    const s = session({ call_session_id: 1, contact_phone_number: "79123456789", direction: "OUT", is_internal: "false", employee_id: 25, employee_full_name: "Иван" });
    expect(s).toMatchObject({ direction: "out", internal: false, employeeId: "25", employee: "Иван" });
  });

  it("a direction CoMagic does not document as unknown", () => {
    expect(session({ call_session_id: 1, contact_phone_number: "79123456789", direction: "callback" })).toMatchObject({ direction: null });
  });

  // FACTS-calls §3.1 / samples §6: substitution is undocumented; a variable the event lacks may stay as written.
  it.each([
    ["left as a quoted placeholder", "{{visitor_id}}"],
    ["empty", ""],
    ["blank", "  "],
    ["null", null],
  ])("a value the template could not fill (%s) as absent, never as an error", (_name, value) => {
    const s = session({
      call_session_id: 1,
      contact_phone_number: "79123456789",
      visitor_id: value,
      talk_time_duration: value,
      is_lost: value,
      tag_names: value,
      direction: value,
      employee_id: value,
    });
    expect(s).toMatchObject({ visitorId: null, talkSeconds: null, lost: null, tags: [], direction: null, employeeId: null });
  });

  it.each([
    ["a flat call", { call_session_id: 1, contact_phone_number: null }],
    ["a flat call with the number left unfilled", { call_session_id: 1, contact_phone_number: "{{contact_phone_number}}" }],
    ["a seed call", { call_session: { id: 1 } }],
  ])("%s without a caller number (hidden), for the domain to ignore", (_name, body) => {
    expect(session(body)).toMatchObject({ kind: "call", phone: null });
  });

  it("a chat_session, without event_type too", () => {
    const s = session({ chat_session: { id: 9, visitor_name: "Anna", visitor_email: "a@b.ru", tags: [{ tag_name: "vip" }] } });
    expect(s).toMatchObject({ kind: "chat", id: "9", name: "Anna", email: "a@b.ru", phone: null, tags: ["vip"] });
  });

  it("an event type it does not handle as such, not as an error", () => {
    expect(parseNotification({ event_type: "call_recording_ready" })).toEqual({ type: "unknown_event", eventType: "call_recording_ready" });
  });
});

describe("parseNotification rejects with the failing path", () => {
  it.each([
    ["an array", [], ""],
    ["an object that is no session", { hello: 1 }, "call_session"],
    ["a call without an id", { call_session: { visitor_phone_number: "79123456789" } }, "call_session.id"],
    ["a flat call whose session id CoMagic did not fill", { call_session_id: "{{call_session_id}}", contact_phone_number: "79123456789" }, "call_session_id"],
    ["a negative duration", { call_session: { id: 1, visitor_phone_number: "1", duration_total: -3 } }, "call_session.duration_total"],
    ["a lost flag that is not a boolean", { call_session: { id: 1, visitor_phone_number: "1", is_lost_call: "maybe" } }, "call_session.is_lost_call"],
    ["a chat announced as a chat without chat_session", { event_type: "chat_session_completed" }, "chat_session"],
  ])("%s", (_name, body, path) => {
    let error: unknown;
    try {
      parseNotification(body);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ZodError);
    expect((error as ZodError).issues.map((i) => i.path.join("."))).toContain(path);
  });
});

// No source documents chat or request notification variables (FACTS-calls §3.2): a body naming one by id asks for it.
describe("parseNotification of a body that names a chat or a request", () => {
  it.each([
    [
      "the minimal chat template",
      { communication_type: "chat", communication_id: "{{communication_id}}".replace("{{communication_id}}", "7781") },
      { kind: "chat", field: "communication_id", id: "7781" },
    ],
    ["the minimal request template, numbers unquoted", { communication_type: "offline_message", communication_id: 99 }, { kind: "request", field: "communication_id", id: "99" }],
    ["a chat by its own id", { chat_id: 5 }, { kind: "chat", field: "id", id: "5" }],
    ["a request by its own id", { offline_message_id: "12" }, { kind: "request", field: "id", id: "12" }],
  ])("%s asks for it to be read", (_name, body, ask) => {
    expect(parseNotification(body)).toEqual({ type: "fetch", ...ask });
  });

  it.each([
    ["a call's communication id", { communication_type: "call", communication_id: 7 }],
    ["an id CoMagic did not fill", { communication_type: "chat", communication_id: "{{communication_id}}" }],
    ["an id that is not a number", { chat_id: "1 OR 1=1" }],
  ])("%s is no request to read anything", (_name, body) => {
    expect(() => parseNotification(body)).toThrow(ZodError);
  });

  it("a call notification that also names its communication is still a call", () => {
    expect(parseNotification({ call_session_id: 3, communication_type: "call", communication_id: 7, contact_phone_number: "79123456789" })).toMatchObject({
      type: "session",
      session: { kind: "call" },
    });
  });
});
