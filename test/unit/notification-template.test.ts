import { describe, expect, it } from "vitest";
import template from "../../docs/comagic-call-notification.template?raw";
import { parseNotificationJson } from "../../worker/comagic/notification-body";
import { parseNotification } from "../../worker/comagic/notification-schema";
import { classifySession } from "../../worker/domain/comagic-session";

/**
 * Variables real "Завершение звонка" / "Call finished" templates carry (FACTS-calls §3.2): the Planfix UIS
 * template, the mgdemo UIS variable dump, Novofon's CALL_END and the UISController consumer.
 */
const CALL_FINISHED_VARIABLES = new Set([
  // Planfix UIS
  "notification_name",
  "notification_mnemonic",
  "virtual_phone_number",
  "notification_time",
  "external_id",
  "contact_phone_number",
  "communication_number",
  "employee_full_name",
  "employee_id",
  "call_source",
  "direction",
  "call_session_id",
  "scenario_name",
  "talk_time_duration",
  "total_time_duration",
  "wait_time_duration",
  "tag_names",
  // mgdemo UIS wiki
  "app_id",
  "attributes",
  "called_phone_number",
  "calling_phone_number",
  "communication_id",
  "communication_type",
  "contact_full_name",
  "contact_group_ids",
  "contact_id",
  "cpn_region_id",
  "cpn_region_name",
  "is_internal",
  "notification_timestamp",
  "scenario_id",
  "start_time",
  "tp_project",
  "visitor_country",
  // Novofon CALL_END, UISController
  "extension_phone_number",
  "call_status",
  "employee_phone_number",
  "employee_ids",
]);

const sample: Record<string, unknown> = {
  notification_name: "Завершение звонка",
  notification_time: "2026-11-24 12:30:05.123",
  call_session_id: 2427195081,
  communication_number: 3,
  contact_phone_number: "79123456789",
  virtual_phone_number: "74993720692",
  direction: "in",
  is_internal: false,
  call_source: "va",
  scenario_name: "Основной",
  employee_id: 25,
  employee_full_name: "Иван Петров",
  talk_time_duration: 42,
  total_time_duration: 57,
  wait_time_duration: 15,
  tag_names: ["Целевой", "Новый клиент"],
};

const rules = { defaultRegion: "RU" as const, minLostCallSeconds: 10, receivedAt: new Date("2026-11-24T10:00:00Z") };
const variables = [...template.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1] as string);

/** The template as CoMagic fills it: each placeholder replaced by whatever `literal` makes of its value. */
function render(values: Record<string, unknown>, literal: (v: unknown, name: string) => string): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => literal(values[name] ?? null, name));
}

function classify(body: string) {
  const json = parseNotificationJson(body);
  expect(json, "the body parses").toBeDefined();
  const notification = parseNotification(json);
  if (notification.type !== "session") throw new Error("expected a session");
  return classifySession(notification.session, rules);
}

describe("the call-finished template in docs/", () => {
  it("uses only variables real call-finished templates carry (no utm_*, file_link, visitor_id)", () => {
    expect(variables.filter((v) => !CALL_FINISHED_VARIABLES.has(v))).toEqual([]);
    expect(variables).toEqual(expect.arrayContaining(["call_session_id", "contact_phone_number", "direction", "employee_id"]));
  });

  it("makes a lead as CoMagic renders it, with JSON literals", () => {
    expect(classify(render(sample, (v) => JSON.stringify(v)))).toMatchObject({
      status: "accepted",
      event: { kind: "call", key: "2427195081", phone: "+79123456789", employeeId: "25", tags: ["Целевой", "Новый клиент"], call: { lost: false, talkSeconds: 42, totalSeconds: 57 } },
    });
  });

  it("makes a lead when every value comes as a string and lists as one string", () => {
    const asStrings = (v: unknown) => JSON.stringify(v === null ? null : Array.isArray(v) ? v.join(", ") : String(v));
    expect(classify(render(sample, asStrings))).toMatchObject({ status: "accepted", event: { call: { talkSeconds: 42 } } });
  });

  it("makes a lead when CoMagic leaves the optional variables unreplaced, unquoted", () => {
    const body = render(sample, (v, name) => (name === "call_session_id" || name === "contact_phone_number" ? JSON.stringify(v) : `{{${name}}}`));
    expect(classify(body)).toMatchObject({ status: "accepted", event: { key: "2427195081", employeeId: null } });
  });

  it("makes a lead when CoMagic replaces the optional variables by nothing", () => {
    const body = render(sample, (v, name) => (name === "call_session_id" || name === "contact_phone_number" ? JSON.stringify(v) : ""));
    expect(classify(body)).toMatchObject({ status: "accepted" });
  });

  // samples/notifications_templates_collected.md §5: a CallGear consumer strips ""doubled"" quotes.
  it("makes a lead when text comes quoted twice", () => {
    const body = render(sample, (v) => (typeof v === "string" ? `""${v}""` : JSON.stringify(v)));
    expect(classify(body)).toMatchObject({ status: "accepted", event: { employee: "Иван Петров" } });
  });

  it.each([
    ["null", "null"],
    ["empty", '""'],
    ["unreplaced", "{{contact_phone_number}}"],
  ])("answers a hidden caller number (%s) as ignored, not as an error", (_name, phoneLiteral) => {
    const body = render(sample, (v, name) => (name === "contact_phone_number" ? phoneLiteral : JSON.stringify(v)));
    expect(classify(body)).toEqual({ status: "ignored", reason: "hidden_number" });
  });

  it("ignores an outbound call", () => {
    expect(classify(render({ ...sample, direction: "out" }, (v) => JSON.stringify(v)))).toEqual({ status: "ignored", reason: "outbound_call" });
  });

  it("ignores a short lost call: no talk time", () => {
    expect(classify(render({ ...sample, talk_time_duration: 0, total_time_duration: 4 }, (v) => JSON.stringify(v)))).toEqual({ status: "ignored", reason: "untargeted_call" });
  });
});

// samples/planfix_uis_notifications_templates.md "8. Потерянный звонок": no direction, no talk time.
describe("the lost-call template of real accounts", () => {
  const lostCall = `{
  "notification_name":{{notification_name}}, "notification_mnemonic":{{notification_mnemonic}}, "virtual_phone_number":{{virtual_phone_number}},
  "notification_time":{{notification_time}}, "scenario_name": {{scenario_name}}, "wait_time_duration" : {{wait_time_duration}},
  "employee_ids":{{employee_ids}}, "contact_phone_number":{{contact_phone_number}}, "communication_number":{{communication_number}},
  "contact_id": {{contact_id}}, "contact_full_name":{{contact_full_name}}, "call_session_id":{{call_session_id}} }`;

  it("makes an inbound lead", () => {
    const values: Record<string, unknown> = { call_session_id: 5, contact_phone_number: "79123456789", wait_time_duration: 25, employee_ids: [25, 26], contact_id: null };
    const body = lostCall.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => JSON.stringify(values[name] ?? null));
    expect(classify(body)).toMatchObject({ status: "accepted", event: { key: "5", call: { totalSeconds: 25 } } });
  });
});
