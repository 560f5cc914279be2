import { createHmac, randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import { formatComagicDateTime } from "../worker/domain/comagic-time";
import { callsReportRow, SANDBOX_ACCOUNT_TIME_ZONE } from "./comagic/calls-report-row";

const TEMPLATE = readFileSync(new URL("../docs/comagic-call-notification.template", import.meta.url), "utf8");

/**
 * A fresh call: the notification as CoMagic renders the shipped template, and the call's row in get.calls_report.
 * With `sandboxUrl`, its recording is on the sandbox's media host, which the worker can reach to check it (the
 * sandbox has no internet: a media.comagic.ru link cannot be checked, only attached unchecked).
 */
export function sampleCall(sandboxUrl?: string) {
  const id = randomInt(1_000_000_000, 9_999_999_999);
  const digits = `79${randomInt(10, 99)}${randomInt(1_000_000, 9_999_999)}`;
  const visitorId = randomInt(10_000_000, 99_999_999);
  const values: Record<string, unknown> = {
    notification_name: "Завершение звонка",
    notification_time: formatComagicDateTime(new Date(), SANDBOX_ACCOUNT_TIME_ZONE),
    call_session_id: id,
    communication_number: 1,
    contact_phone_number: digits,
    virtual_phone_number: "74993720692",
    direction: "in",
    is_internal: false,
    call_source: "va",
    scenario_name: "Основной",
    employee_id: 25,
    employee_full_name: "Ivan Admin",
    talk_time_duration: 80,
    total_time_duration: 95,
    wait_time_duration: 15,
    tag_names: ["target", "new client"],
  };
  const notification = TEMPLATE.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => JSON.stringify(values[name] ?? null));
  const recording = sandboxUrl ? { full_record_file_link: `${sandboxUrl}/_sandbox/media/rec/${id}.mp3` } : {};
  const reportRow = callsReportRow({ id, phone: digits, visitorId, startedAt: new Date(Date.now() - 95_000) }, recording);
  return { id, notification, reportRow };
}

export function signBody(body: string, secret: string): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}

/**
 * Seeds a sample call in the CoMagic sandbox's calls report and posts its signed notification to a local
 * worker: the worker's answer, or null when nothing listens there.
 */
export async function postSampleCall(workerUrl: string, sandboxUrl: string, token: string, secret: string): Promise<{ status: number; id?: string; answer: unknown } | null> {
  const { notification: body, reportRow } = sampleCall(sandboxUrl);
  await fetch(`${sandboxUrl}/_sandbox/comagic/data`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ calls: [reportRow] }) }).catch(() => null);
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
