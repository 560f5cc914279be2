/*
 * The idempotency key of each kind of event: the ledger, Bitrix24's ORIGIN_ID and UF_CRM_COMAGIC_ID all carry
 * it, so it must never change for an event already written. A call is its CoMagic call session id as is (what
 * CoMagic's reports and the reconciliation know it by); a chat and a form are prefixed so that no id of one
 * can be read as another's.
 */

export const callKey = (callSessionId: string): string => callSessionId;

export const chatKey = (chatSessionId: string | number): string => `chat-${chatSessionId}`;

/** `fingerprintHex`: SHA-256 of the form's page view and content (domain/form-submission.ts), in hex. */
export const formKey = (fingerprintHex: string): string => `form-${fingerprintHex.slice(0, 32)}`;
