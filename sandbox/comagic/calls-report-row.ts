import { formatComagicDateTime } from "../../worker/domain/comagic-time";

/** The sandbox account's zone: report times are its wall clock, no suffix (comagic/FACTS.md §1.1: account-local, [U]). */
export const SANDBOX_ACCOUNT_TIME_ZONE = "Europe/Moscow";

/**
 * One answered 95-second incoming call as `get.calls_report` returns it: from paid search, with a recording,
 * answered by employee 25. `send:call` and the tests seed the sandbox's report with it; `overrides` change
 * what a test is about.
 */
export function callsReportRow(call: { id: number; phone: string; visitorId: number | null; startedAt: Date }, overrides: Record<string, unknown> = {}) {
  return {
    id: call.id,
    // A call's communication id is not its session id (FACTS-calls §1.1, FACTS-loop §1.5 "Which id"): a number of its own.
    communication_id: call.id * 3 + 1,
    start_time: formatComagicDateTime(call.startedAt, SANDBOX_ACCOUNT_TIME_ZONE),
    direction: "in",
    is_lost: false,
    contact_phone_number: call.phone,
    total_duration: 95,
    talk_duration: 80,
    wait_duration: 15,
    visitor_id: call.visitorId,
    channel: "paid",
    source_name: "Яндекс.Директ",
    site_domain_name: "shop.example.ru",
    tags: [{ tag_name: "target" }],
    full_record_file_link: `https://media.comagic.ru/${call.id}/full.mp3`,
    last_answered_employee_id: 25,
    last_answered_employee_full_name: "Ivan Admin",
    call_api_external_id: null,
    utm_source: "yandex",
    utm_medium: "cpc",
    utm_campaign: "spring_sale",
    utm_content: "ad_42",
    utm_term: "buy sofa",
    ...overrides,
  };
}
