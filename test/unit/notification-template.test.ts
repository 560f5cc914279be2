import { describe, expect, it } from "vitest";
import template from "../../docs/comagic-call-notification.template?raw";
import { parseNotification } from "../../worker/comagic/notification-schema";

const sample: Record<string, unknown> = {
  call_session_id: 2427195081,
  contact_phone_number: "79123456789",
  talk_time_duration: 42,
  total_time_duration: 57,
  wait_time_duration: 15,
  employee_full_name: "Иван Петров",
  tag_names: ["Целевой", "Новый клиент"],
  visitor_id: 17258569,
  utm_source: "yandex",
  utm_medium: "cpc",
  utm_campaign: null,
  utm_content: null,
  utm_term: "диван",
  site_domain_name: "shop.example.ru",
  file_link: "https://media.comagic.ru/1/2",
};

function render(values: Record<string, unknown>, literal: (v: unknown) => string): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => literal(values[name] ?? null));
}

describe("the notification template in docs/", () => {
  it("uses only variables CoMagic offers and the worker reads", () => {
    const names = [...template.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]);
    expect(names.sort()).toEqual(Object.keys(sample).sort());
  });

  it("is accepted as CoMagic renders it, with JSON literals", () => {
    const notification = parseNotification(JSON.parse(render(sample, (v) => JSON.stringify(v))));
    expect(notification).toMatchObject({
      type: "session",
      session: { kind: "call", id: "2427195081", phone: "79123456789", talkSeconds: 42, totalSeconds: 57, lost: false, tags: ["Целевой", "Новый клиент"], visitorId: "17258569" },
    });
  });

  it("is accepted when every value comes as a string and lists as one string", () => {
    const asStrings = Object.fromEntries(Object.entries(sample).map(([k, v]) => [k, v === null ? null : Array.isArray(v) ? v.join(", ") : String(v)]));
    const notification = parseNotification(JSON.parse(render(asStrings, (v) => JSON.stringify(v))));
    expect(notification).toMatchObject({ type: "session", session: { talkSeconds: 42, tags: ["Целевой", "Новый клиент"] } });
  });

  it("is accepted for a lost call where CoMagic has nothing but the id and number", () => {
    const sparse = { call_session_id: 1, contact_phone_number: "79123456789" };
    const notification = parseNotification(JSON.parse(render(sparse, (v) => JSON.stringify(v))));
    expect(notification).toMatchObject({ type: "session", session: { lost: true, totalSeconds: null } });
  });
});
