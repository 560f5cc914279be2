import { contactKeys, type LeadEvent } from "./lead-event";

/*
 * Which contacts of an event its channel vouches for, and so what the event may change on a CRM item that
 * exists. Trust is per contact, not per kind:
 *
 * | contact                                                           | verified | why                             |
 * |-------------------------------------------------------------------|----------|---------------------------------|
 * | a call's phone                                                    | yes      | CoMagic's telephony saw it      |
 * | a WhatsApp, WABA or Viber chat's phone                            | yes      | it is the sender's account      |
 * | a Telegram, VK, Avito, MAX, … chat's phone                        | no       | a card the user sent, or typed  |
 * | a site chat's phone (`comagic`; the legacy body names no channel) | no       | typed by whoever opened it      |
 * | any chat's email                                                  | no       | typed (pre-chat form, visitors) |
 * | a CoMagic request's or a website form's phone and email           | no       | typed into a form               |
 *
 * Telegram names people by user id: a bot gets a number only as a contact card (any card) or as text.
 * An event speaks for (is anchored on) an existing lead, deal or contact when every contact it carries is
 * verified (whatever matched, matched through one of them: a call), or when the item holds one of its verified
 * contacts (a WhatsApp chat with a typed email, found by its number). Then, on what exists:
 *
 * | field                                       | anchored event                   | any other event                  |
 * |---------------------------------------------|----------------------------------|----------------------------------|
 * | phone, email                                | verified ones added when missing | never (timeline, "unverified")   |
 * | name                                        | filled when empty                | never (timeline)                 |
 * | CoMagic visitor id (UF_CRM_CM_VISITOR_ID)   | filled when empty                | never (timeline, "unverified")   |
 * | UTM fields, sessions, first and last source | filled when empty                | never                            |
 * | attribution credits in D1 (the report)      | from the item's own visitor      | never                            |
 * | the ledger's contact keys (contact_leads)   | verified keys, keys it holds     | keys the item already held       |
 * | the event key (UF_CRM_COMAGIC_ID)           | written                          | written (a retry is a no-op)     |
 *
 * Typed contacts are never added to what exists, anchored or not. The visitor id of a chat or a request is
 * CoMagic's own tracking, not a value a browser posts as on a website form; it still follows the contact that
 * tied the event to the item: an attacker who opens a site chat typing a client's email brings their own,
 * genuinely tracked visitor (one that came from the attacker's ads), and crediting it would move the client's
 * attribution. A CRM item the event itself creates gets everything it gave: it belongs to whoever sent it.
 */

/** Chat channels whose sender address is a phone number: `chat_channel_type` of get.chats_report. */
export const PHONE_VERIFIED_CHANNELS: ReadonlySet<string> = new Set(["whatsapp", "waba", "viber"]);

export interface ContactTrust {
  phone: boolean;
  email: boolean;
}

/** Which of the event's contacts its channel vouches for (a contact it does not carry counts as vouched for). */
export function contactTrust(event: Pick<LeadEvent, "kind" | "chat">): ContactTrust {
  switch (event.kind) {
    case "call":
      return { phone: true, email: true };
    case "chat":
      return { phone: PHONE_VERIFIED_CHANNELS.has(event.chat?.channelType ?? ""), email: false };
    default:
      return { phone: false, email: false };
  }
}

/** The event's contact keys (lead-event.ts contactKeys) that its channel vouches for. */
export function verifiedContactKeys(event: Pick<LeadEvent, "kind" | "chat" | "phone" | "email">): string[] {
  const trust = contactTrust(event);
  return contactKeys({ phone: trust.phone ? event.phone : null, email: trust.email ? event.email : null });
}

/** Every contact the event carries is vouched for: a call, a messenger chat with only its number. */
export function isVerifiedSource(event: Pick<LeadEvent, "kind" | "chat" | "phone" | "email">): boolean {
  const all = contactKeys(event);
  // An event without contacts vouches for nothing, unless it is a call (whose caller CoMagic saw).
  return all.length > 0 ? verifiedContactKeys(event).length === all.length : event.kind === "call";
}

/**
 * Whether the event speaks for an existing item: `held` are the event's contact keys the item holds
 * (lead-plan.ts heldContactKeys).
 */
export function isAnchored(event: Pick<LeadEvent, "kind" | "chat" | "phone" | "email">, held: readonly string[]): boolean {
  if (isVerifiedSource(event)) return true;
  return verifiedContactKeys(event).some((key) => held.includes(key));
}
