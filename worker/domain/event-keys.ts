/*
 * The idempotency key of each kind of event: the ledger, Bitrix24's ORIGIN_ID and UF_CRM_COMAGIC_ID all carry
 * it, so it must never change for an event already written. A call is its CoMagic call session id as is (what
 * CoMagic's reports and the reconciliation know it by); a chat, a request and a form are prefixed so that no id
 * of one can be read as another's (CoMagic numbers calls, chats and offline messages separately).
 */

export const callKey = (callSessionId: string): string => callSessionId;

/** A get.chats_report `id`; the legacy chat_session body's `id` must be the same number for both to be one lead. */
export const chatKey = (chatSessionId: string | number): string => `chat-${chatSessionId}`;

/** A CoMagic request: its get.offline_messages_report `id` (the offline message, not the communication id). */
export const requestKey = (offlineMessageId: string | number): string => `request-${offlineMessageId}`;

/** `fingerprintHex`: SHA-256 of the form's page view and content (domain/form-submission.ts), in hex. */
export const formKey = (fingerprintHex: string): string => `form-${fingerprintHex.slice(0, 32)}`;

/** What CoMagic knows an event by, read back from its key: the report and the id to ask for. Forms are ours alone. */
export type KeyedEvent = { kind: "call"; id: string } | { kind: "chat"; id: string } | { kind: "request"; id: string } | { kind: "form" };

export function eventOfKey(key: string): KeyedEvent | null {
  if (/^\d+$/.test(key)) return { kind: "call", id: key };
  const match = /^(chat|request)-(\d+)$/.exec(key);
  if (match) return { kind: match[1] as "chat" | "request", id: match[2] as string };
  return key.startsWith("form-") ? { kind: "form" } : null;
}
