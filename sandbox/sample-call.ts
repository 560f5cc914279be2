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

/** Posts a signed sample call to a local worker: the worker's answer, or null when nothing listens there. */
export async function postSampleCall(workerUrl: string, token: string, secret: string): Promise<{ status: number; id?: string; answer: unknown } | null> {
  const body = JSON.stringify(sampleCallBody());
  const response = await fetch(`${workerUrl}/webhooks/comagic?token=${token}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-comagic-signature": signBody(body, secret) },
    body,
  }).catch(() => null);
  if (!response) return null;
  const answer = (await response.json()) as { id?: string };
  return { status: response.status, id: answer.id, answer };
}

/** Waits up to `timeoutMs` for the sandbox portal's lead carrying this CoMagic session key. */
export async function waitForLeadOf(sandboxUrl: string, key: string, timeoutMs = 30_000): Promise<Record<string, unknown> | null> {
  for (const started = Date.now(); Date.now() - started < timeoutMs; ) {
    const leads = (await (await fetch(`${sandboxUrl}/_sandbox/leads`)).json()) as Record<string, unknown>[];
    const lead = leads.find((l) => l.UF_CRM_COMAGIC_ID === key);
    if (lead) return lead;
    await new Promise((r) => setTimeout(r, 250));
  }
  return null;
}
