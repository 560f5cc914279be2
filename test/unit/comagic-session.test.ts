import { describe, expect, it } from "vitest";
import { classifySession, isTargetedCall, type CoMagicSession } from "../../worker/domain/comagic-session";
import { EMPTY_UTM } from "../../worker/domain/lead-event";

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
    visitorId: null,
    utm: EMPTY_UTM,
    employee: null,
    employeeId: null,
    trafficType: null,
    entryPage: null,
    tags: [],
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
    visitorId: null,
    utm: EMPTY_UTM,
    employee: null,
    employeeId: null,
    trafficType: null,
    entryPage: null,
    tags: [],
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
