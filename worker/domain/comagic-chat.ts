import type { CrmTexts } from "../i18n/crm-texts";
import type { ChatLine, LeadEvent } from "./lead-event";

/*
 * CoMagic chats and requests as the Data API gives them, for comagic-session.ts: what an adapter hands the
 * domain, the rules that make a chat nothing (still open, a group, started by an operator, nothing the client
 * said), and the transcript a manager reads on the timeline. `RD/` is ../shared/reference/comagic/docs/.
 *
 * An adapter fills ChatDetails from a get.chats_report row (RD/data_api__report__get_chats_report.txt:
 * `status` l.31, `initiator` l.36, `communication_page_url` l.45, `chat_channel_type` l.51, `chat_channel_name`
 * l.75, `is_group_chat` l.83) and the chat's get.chat_messages_report rows (…get_chat_messages_report.txt: one
 * read for many chats with `chat_ids` l.25; `date_time` l.58, `source` l.62, `resource` l.70,
 * `employee_full_name` l.79), and RequestDetails from a get.offline_messages_report row
 * (…get_offline_messages_report.txt: `text` l.33, `communication_page_url` l.35, `form_type` l.50,
 * `form_name` l.53, `properties` l.77). The phone is `visitor_phone_number` (chats l.132, requests l.104),
 * string or number (FACTS.md §2.5); the email and name of a request are `visitor_email` and `visitor_name`.
 *
 * A chat's messages are read only for chats that classify as accepted without them (messages null): classify,
 * read the accepted chats' messages in one read, classify again with them.
 */

/** One get.chat_messages_report row, in send order. */
export interface ChatMessage {
  /** `date_time`, CoMagic's account-local `YYYY-MM-DD hh:mm:ss`. */
  at: string | null;
  /** `source`: system | operator | visitor | retention | autoinvite | form_text | chat_channel | chatbot. */
  source: string | null;
  text: string | null;
  employee: string | null;
  /** `resource`, when the message sent a file. */
  file: { name: string | null; url: string | null } | null;
}

/** What a get.chats_report row says of a chat beyond the contact fields every session has. */
export interface ChatDetails {
  channelType: string | null;
  channelName: string | null;
  /** new | active (not closed yet) | lost | succeed | refused (closed, the visitor wrote nothing). */
  status: string | null;
  /** operator | visitor | autoinvite | chat_channel | chatbot. */
  initiator: string | null;
  isGroupChat: boolean;
  pageUrl: string | null;
  /** null when not read (yet). */
  messages: readonly ChatMessage[] | null;
}

/** What a get.offline_messages_report row says of a request beyond the contact fields. */
export interface RequestDetails {
  formName: string | null;
  /** Пользовательская | Стандартная | DataAPI. */
  formType: string | null;
  text: string | null;
  pageUrl: string | null;
  /** `properties`: a callback form's comment. */
  comment: string | null;
  /**
   * CoMagic's "technical" request, not a client's. No report field says so (the report leaves them out unless
   * asked with include_tech_offline_messages, RD l.25): null from the report, true only where a source can tell.
   */
  tech: boolean | null;
  /** The `ext_id` an upload gave it (`upload.offline_messages`, FACTS-loop §2): ours is the form's ledger key. */
  extId?: string | null;
}

export type ChatIgnoreReason = "chat_open" | "group_chat" | "outbound_chat" | "no_client_message";

/** Why a chat the feed read is nothing, or null. An open chat is not final: the feed reads it again later. */
export function chatIgnoreReason(chat: ChatDetails): ChatIgnoreReason | null {
  if (chat.status === "new" || chat.status === "active") return "chat_open";
  // Several visitors share one chat (visitor_ids): its phone and visitor are nobody's in particular.
  if (chat.isGroupChat) return "group_chat";
  // Like an outbound call: a manager writing to someone is not a new inquiry.
  if (chat.initiator === "operator") return "outbound_chat";
  if (chat.status === "refused") return "no_client_message";
  if (chat.messages && !chat.messages.some((m) => CLIENT_SOURCES.has(m.source ?? ""))) return "no_client_message";
  return null;
}

/** Message sources that are the client: typed on the site, sent from a messenger, or the pre-chat form. */
const CLIENT_SOURCES: ReadonlySet<string> = new Set(["visitor", "chat_channel", "form_text"]);
/** CoMagic's own notices ("chat closed") and retention prompts say nothing of the conversation. */
const SKIPPED_SOURCES: ReadonlySet<string> = new Set(["system", "retention"]);

function speaker(source: string | null): ChatLine["from"] {
  if (CLIENT_SOURCES.has(source ?? "")) return "client";
  if (source === "operator") return "employee";
  if (source === "chatbot") return "bot";
  return "system";
}

/**
 * The comment stays readable and the queue message small (a message is at most 128 KB): at most 50 messages and
 * 6,000 characters of text, each message cut at 1,000; the rest is counted and pointed to in CoMagic.
 */
export const TRANSCRIPT_LIMITS = { messages: 50, chars: 6_000, messageChars: 1_000 } as const;

export function clip(text: string | null, max: number): string | null {
  if (text === null) return null;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The chat's messages as transcript lines, the beginning kept (where the client says what they want). */
export function cutTranscript(messages: readonly ChatMessage[], limits = TRANSCRIPT_LIMITS): { messages: ChatLine[]; omitted: number } {
  const said = messages.filter((m) => !SKIPPED_SOURCES.has(m.source ?? "") && ((m.text ?? "").trim() || m.file?.url));
  const lines: ChatLine[] = [];
  let chars = 0;
  for (const m of said) {
    const text = clip((m.text ?? "").trim(), limits.messageChars) ?? "";
    if (lines.length >= limits.messages || (lines.length > 0 && chars + text.length > limits.chars)) break;
    chars += text.length;
    const from = speaker(m.source);
    lines.push({
      at: clip(m.at, 40),
      from,
      name: from === "employee" ? clip(m.employee, 200) : null,
      text,
      file: m.file?.url ? { name: clip(m.file.name, 200), url: clip(m.file.url, 2000) } : null,
    });
  }
  return { messages: lines, omitted: said.length - lines.length };
}

/** The channel as a manager would name it: "WhatsApp", "website", else CoMagic's name for it. */
export function channelLabel(chat: Pick<NonNullable<LeadEvent["chat"]>, "channelType" | "channelName">, t: CrmTexts): string | null {
  const type = chat.channelType;
  if (type && Object.hasOwn(t.channels, type)) return t.channels[type] ?? null;
  return type ?? chat.channelName;
}

const LOCAL_TIME = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})/;

/** "[2026-11-24 10:01] Client: text": the date once, then only when it changes; CoMagic's local time as CoMagic shows it. */
export function renderTranscript(chat: NonNullable<LeadEvent["chat"]>, chatId: string, t: CrmTexts): string[] {
  if (chat.messages === null) return [t.messagesNotRead];
  if (chat.messages.length === 0) return [t.noMessages];
  const lines = [`${t.messages}:`];
  let day: string | null = null;
  for (const m of chat.messages) {
    const parsed = m.at ? LOCAL_TIME.exec(m.at) : null;
    let when = m.at ?? "";
    if (parsed) {
      when = parsed[1] === day ? (parsed[2] ?? "") : `${parsed[1]} ${parsed[2]}`;
      day = parsed[1] ?? null;
    }
    const who = m.from === "employee" && m.name ? `${t.speaker.employee} ${m.name}` : t.speaker[m.from];
    const file = m.file ? `(${t.file}${m.file.name ? ` ${m.file.name}` : ""}: ${m.file.url})` : "";
    lines.push(`${when ? `[${when}] ` : ""}${who}: ${[m.text, file].filter(Boolean).join(" ")}`);
  }
  if (chat.omitted > 0) lines.push(t.moreMessages(chat.omitted, chatId));
  return lines;
}
