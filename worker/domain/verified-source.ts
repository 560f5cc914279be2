import type { LeadEvent } from "./lead-event";

/*
 * Which sources may change what a CRM item already has. CoMagic's notifications are authenticated (token or
 * signature) and CoMagic itself saw the caller's number; a website form is anonymous: anyone can post one naming
 * a client's email with their own phone and any CoMagic visitor id. So an unverified source may fill a CRM item
 * it creates, and may only comment on one that exists:
 *
 * | field of an existing lead, deal or contact          | verified (call, chat) | unverified (website form)        |
 * |-----------------------------------------------------|-----------------------|----------------------------------|
 * | phone, email                                        | added when missing    | never (timeline, "unverified")   |
 * | name                                                | filled when empty     | never (timeline)                 |
 * | CoMagic visitor id (UF_CRM_CM_VISITOR_ID)           | filled when empty     | never (timeline, "unverified")   |
 * | UTM fields, sessions, first and last source         | filled when empty     | never                            |
 * | attribution credits in D1 (the report)              | from the item's own visitor, once it has one | never |
 * | the ledger's contact keys (contact_leads)           | keys the item holds   | keys the item already held       |
 * | the event key (UF_CRM_COMAGIC_ID)                   | written               | written (what makes a retry a no-op) |
 *
 * A CRM item the form itself creates gets everything the form gave: it belongs to whoever sent the form.
 */
export function isVerifiedSource(event: Pick<LeadEvent, "kind">): boolean {
  return event.kind !== "form";
}
