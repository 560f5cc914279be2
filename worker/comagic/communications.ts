import * as z from "zod";
import type { ChatMessage } from "../domain/comagic-chat";
import type { CoMagicSession } from "../domain/comagic-session";
import type { ReportWindow } from "../domain/report-window";
import { CoMagicError, type CoMagicRpcClient } from "./data-api";
import { fetchReport, fetchRowsAnyOf, id, text, toUtm, utmShape } from "./reports";

/*
 * CoMagic's chats and requests ("заявки": its own site forms, callback orders, messenger requests) as the Data API
 * reports them, read into the sessions comagic-session.ts classifies. Each report is one read a page of up to
 * 10,000 rows (data_api.txt:562), however many chats or requests it holds; a chat's messages are read for all the
 * chats of a read at once (`chat_ids`, get_chat_messages_report.txt:25). `RD/` is ../shared/reference/comagic/docs/.
 */

const PAGE_SIZE = 10_000;
const tags = z
  .array(z.object({ tag_name: z.string() }).loose())
  .nullish()
  .transform((t) => (t ?? []).map((tag) => tag.tag_name));

/** The columns a chat and a request share, and the session fields they fill. */
const sharedColumns = {
  id,
  date_time: text,
  communication_id: text,
  communication_page_url: text,
  employee_id: text,
  employee_full_name: text,
  visitor_phone_number: text,
  visitor_id: text,
  channel: text,
  entrance_page: text,
  tags,
  ...utmShape,
};
// Each report is asked for exactly the columns its row schema reads (Object.keys): CoMagic's defaults leave out
// visitor_id and UTMs, so fields are always named.
type SharedRow = z.infer<z.ZodObject<typeof sharedColumns>>;
/** A row as the feed takes it: its session, when CoMagic recorded it, and the communication id notifications name. */
const readSession = (r: SharedRow, session: CoMagicSession): ReadSession => ({ at: r.date_time, communicationId: r.communication_id, session });
const sharedFields = (r: SharedRow) => ({
  id: r.id,
  phone: r.visitor_phone_number,
  visitorId: r.visitor_id,
  utm: toUtm(r),
  employee: r.employee_full_name,
  employeeId: r.employee_id,
  trafficType: r.channel,
  entryPage: r.entrance_page ?? r.communication_page_url,
  tags: r.tags,
});

/**
 * A chat or request with the time CoMagic recorded it (`date_time`, account-local), for the event's occurredAt, and
 * its `communication_id` (what a notification may name it by).
 */
export type ReadSession = { session: CoMagicSession; at: string | null; communicationId?: string | null };

// RD/data_api__report__get_chats_report.txt: status l.31, initiator l.36, date_time l.41, page l.45, channel l.51-75,
// is_group_chat l.83, employee l.110-111, visitor_phone_number l.132 (a number: FACTS.md §2.5 says string or number).
const chatColumns = { ...sharedColumns, status: text, initiator: text, chat_channel_type: text, chat_channel_name: text, is_group_chat: z.boolean().nullish() };
const CHAT_FIELDS = Object.keys(chatColumns);
const chatRow = z
  .object(chatColumns)
  .loose()
  .transform((r) =>
    readSession(r, {
      ...sharedFields(r),
      kind: "chat",
      // The chats report has no name or email field (RD l.128-137): a chat gives a phone or nothing.
      name: null,
      email: null,
      chat: {
        channelType: r.chat_channel_type,
        channelName: r.chat_channel_name,
        status: r.status,
        initiator: r.initiator,
        isGroupChat: r.is_group_chat === true,
        pageUrl: r.communication_page_url,
        messages: null,
      },
    }),
  );

// RD/data_api__report__get_offline_messages_report.txt: date_time l.32 (not a default field: named), text l.33,
// page l.35, form_type l.50, form_name l.53, properties l.77, employee l.82, visitor contacts l.104-107.
/** `properties`: a callback form's comment, as text however CoMagic shapes it. */
const properties = z.unknown().transform((v) => (v === null || v === undefined || v === "" ? null : typeof v === "string" ? v : JSON.stringify(v)));
const requestColumns = { ...sharedColumns, text, form_type: text, form_name: text, properties, visitor_email: text, visitor_name: text, ext_id: text };
const REQUEST_FIELDS = Object.keys(requestColumns);
const requestRow = z
  .object(requestColumns)
  .loose()
  .transform((r) =>
    readSession(r, {
      ...sharedFields(r),
      kind: "request",
      name: r.visitor_name,
      email: r.visitor_email,
      // No row field marks a technical request (RD l.25 is a parameter only): the report decides whether they come.
      request: { formName: r.form_name, formType: r.form_type, text: r.text, pageUrl: r.communication_page_url, comment: r.properties, tech: null, extId: r.ext_id },
    }),
  );

/** Chats that started in the window (`date_time` is the chat's start, RD l.41), each without its messages yet. */
export function fetchChats(client: CoMagicRpcClient, window: ReportWindow): Promise<ReadSession[]> {
  return fetchReport(client, "get.chats_report", CHAT_FIELDS, chatRow, window, undefined, {}, PAGE_SIZE);
}

/**
 * Requests made in the window. CoMagic leaves out its technical requests unless asked
 * (`include_tech_offline_messages`, RD/…get_offline_messages_report.txt:25): COMAGIC_TECH_REQUESTS asks.
 */
export function fetchRequests(client: CoMagicRpcClient, window: ReportWindow, includeTech: boolean): Promise<ReadSession[]> {
  return fetchReport(client, "get.offline_messages_report", REQUEST_FIELDS, requestRow, window, undefined, includeTech ? { include_tech_offline_messages: true } : {}, PAGE_SIZE);
}

/** Chats or requests by their `id` or `communication_id` (both filterable: RD chats l.30, l.46; requests l.31, l.37), in one read. */
export function fetchCommunicationsBy(client: CoMagicRpcClient, kind: "chat" | "request", window: ReportWindow, field: "id" | "communication_id", values: readonly string[]): Promise<ReadSession[]> {
  return kind === "chat"
    ? fetchRowsAnyOf(client, "get.chats_report", CHAT_FIELDS, chatRow, window, field, values)
    : fetchRowsAnyOf(client, "get.offline_messages_report", REQUEST_FIELDS, requestRow, window, field, values);
}

// RD/data_api__report__get_chat_messages_report.txt:37-79: rows in send order (date_time l.58).
const MESSAGE_FIELDS = ["id", "chat_id", "date_time", "text", "source", "resource", "employee_full_name"];
const messageRow = z
  .object({
    chat_id: id,
    date_time: text,
    text,
    source: text,
    resource: z.object({ file_url: text, file_name: text }).loose().nullish(),
    employee_full_name: text,
  })
  .loose()
  .transform((r): { chatId: string; message: ChatMessage } => ({
    chatId: r.chat_id,
    message: { at: r.date_time, source: r.source, text: r.text, employee: r.employee_full_name, file: r.resource ? { name: r.resource.file_name, url: r.resource.file_url } : null },
  }));

/** The messages of many chats in one read (`chat_ids` needs no dates, RD l.23-32), keyed by chat id, in send order. */
export async function fetchChatMessages(client: CoMagicRpcClient, chatIds: readonly string[]): Promise<Map<string, ChatMessage[]>> {
  const ids = [...new Set(chatIds)].map(Number).filter(Number.isSafeInteger);
  const byChat = new Map<string, ChatMessage[]>();
  if (ids.length === 0) return byChat;
  for (let offset = 0; ; offset += PAGE_SIZE) {
    const { data, metadata } = await client.call("get.chat_messages_report", { chat_ids: ids, fields: MESSAGE_FIELDS, limit: PAGE_SIZE, offset });
    const page = z.array(messageRow).safeParse(data);
    if (!page.success) throw new CoMagicError("unexpected_answer", "CoMagic Data API get.chat_messages_report: rows not as expected", true);
    for (const { chatId, message } of page.data) byChat.set(chatId, [...(byChat.get(chatId) ?? []), message]);
    const total = typeof metadata.total_items === "number" ? metadata.total_items : 0;
    if (page.data.length < PAGE_SIZE || offset + PAGE_SIZE >= total) break;
  }
  return byChat;
}

// RD/data_api__person__get_visitors.txt:12-30: `ids` (array), one point for all; name, phones[], emails[] per visitor.
const visitorRow = z
  .object({ id, name: text, emails: z.array(z.union([z.string(), z.number()]).transform(String)).nullish() })
  .loose()
  .transform((r) => ({ id: r.id, name: r.name, email: r.emails?.[0] ?? null }));

/**
 * What CoMagic knows of these visitors (what they typed into its chats and forms): a site chat's report row has no
 * name or email (RD/…get_chats_report.txt:128-137), so a chat without a phone would otherwise make nothing.
 */
export async function fetchVisitors(client: CoMagicRpcClient, visitorIds: readonly string[]): Promise<Map<string, { name: string | null; email: string | null }>> {
  const ids = [...new Set(visitorIds)].map(Number).filter(Number.isSafeInteger);
  if (ids.length === 0) return new Map();
  const { data } = await client.call("get.visitors", { ids });
  const rows = z.array(visitorRow).safeParse(data);
  if (!rows.success) throw new CoMagicError("unexpected_answer", "CoMagic Data API get.visitors: rows not as expected", true);
  return new Map(rows.data.map((r) => [r.id, { name: r.name, email: r.email }]));
}

/** What a deal is linked by in CoMagic (FACTS-loop §1.5 "Which id"): the communication's own id, its type, when it was. */
export interface CommunicationOf {
  id: number;
  type: "call" | "chat" | "offline_message";
  /** CoMagic's time of it, account-local. */
  at: string | null;
}

const callCommunicationRow = z.object({ id, communication_id: text, start_time: text }).loose();

/**
 * The communications of calls, chats and requests by their report ids, one read a kind that has any: a call's session
 * id is not its communication id (FACTS-calls §1.1), so each is read once, when its deal is first sent. Keyed
 * `call:<id>`, `chat:<id>`, `request:<id>`; one CoMagic has no row for (yet) is missing.
 */
export async function fetchCommunicationsOf(
  client: CoMagicRpcClient,
  events: readonly { kind: "call" | "chat" | "request"; id: string }[],
  window: ReportWindow,
): Promise<Map<string, CommunicationOf>> {
  const found = new Map<string, CommunicationOf>();
  const idsOf = (kind: string) => events.filter((e) => e.kind === kind).map((e) => e.id);
  const asNumber = (value: string | null | undefined) => (value && /^\d+$/.test(value) ? Number(value) : null);
  const calls = idsOf("call");
  if (calls.length) {
    for (const row of await fetchRowsAnyOf(client, "get.calls_report", Object.keys(callCommunicationRow.shape), callCommunicationRow, window, "id", calls)) {
      const communication = asNumber(row.communication_id);
      if (communication !== null) found.set(`call:${row.id}`, { id: communication, type: "call", at: row.start_time });
    }
  }
  for (const kind of ["chat", "request"] as const) {
    const ids = idsOf(kind);
    if (ids.length === 0) continue;
    for (const row of await fetchCommunicationsBy(client, kind, window, "id", ids)) {
      const communication = asNumber(row.communicationId);
      if (communication !== null) found.set(`${kind}:${row.session.id}`, { id: communication, type: kind === "chat" ? "chat" : "offline_message", at: row.at });
    }
  }
  return found;
}
