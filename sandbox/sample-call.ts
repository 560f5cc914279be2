import { createHmac, randomInt } from "node:crypto";

/** A completed-call notification in the seed's shape, with a fresh session id and number each time. */
export function sampleCallBody(overrides: Record<string, unknown> = {}) {
  const id = randomInt(1_000_000_000, 9_999_999_999);
  return {
    event_type: "call_session_completed",
    call_session: {
      id,
      is_lost_call: false,
      duration_total: 95,
      visitor_phone_number: `8 (9${randomInt(10, 99)}) ${randomInt(100, 999)}-${randomInt(10, 99)}-${randomInt(10, 99)}`,
      visitor_id: String(randomInt(10_000_000, 99_999_999)),
      utm_source: "yandex",
      utm_medium: "cpc",
      utm_campaign: "spring_sale",
      utm_content: "ad_42",
      utm_term: "buy sofa",
      employee_full_name: "Ivan Petrov",
      traffic_type: "paid",
      site_domain_url: "https://shop.example.ru/sofas",
      tags: ["target", "new client"],
      file_link: `https://media.comagic.ru/${id}/record.mp3`,
      ...overrides,
    },
  };
}

export function signBody(body: string, secret: string): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}
