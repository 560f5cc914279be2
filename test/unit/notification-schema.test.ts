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
    expect(s).toMatchObject({ kind: "call", id: "4000123456", lost: false, totalSeconds: 57, talkSeconds: 42, waitSeconds: 15, phone: "79123456789", tags: ["target", "repeat"], visitorId: null });
  });

  it("a flat call with no talk time as a lost call, its duration summed from the parts", () => {
    const s = session({ event_type: "call_session_completed", call_session_id: 1, contact_phone_number: "79123456789", talk_time_duration: 0, wait_time_duration: "8" });
    expect(s).toMatchObject({ lost: true, totalSeconds: 8 });
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
    ["a call without a phone", { call_session: { id: 1 } }, "call_session.visitor_phone_number"],
    ["a flat call without a phone", { call_session_id: 1 }, "contact_phone_number"],
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
