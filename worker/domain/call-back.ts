import { OWNER_TYPE_ID, type CrmEntityRef } from "./crm-entity";
import { crmTexts, type CrmTexts } from "../i18n/crm-texts";
import type { LeadEvent } from "./lead-event";

/** The to-do a lost call leaves for its lead's (or deal's) responsible: call the client back (crm.activity.todo.add). */
export interface CallBackTodo {
  ownerTypeId: 1 | 2 | 3 | 4;
  ownerId: number;
  deadline: string;
  title: string;
  description: string;
  responsibleId?: string;
}

/**
 * A lost call that became (or updated) a lead or deal gets one call-back to-do, due `minutes` after the call by
 * CoMagic's clock (else after its notification arrived); answered calls and other contacts get none.
 */
export function callBackTodo(event: LeadEvent, target: CrmEntityRef, options: { minutes: number; responsibleId: string | null; texts?: CrmTexts }): CallBackTodo | null {
  const t = options.texts ?? crmTexts("en");
  if (event.kind !== "call" || !event.call?.lost) return null;
  const due = new Date(Date.parse(event.occurredAt ?? event.receivedAt) + options.minutes * 60_000);
  return {
    ownerTypeId: OWNER_TYPE_ID[target.type],
    ownerId: Number(target.id),
    // ISO 8601 with the offset: Bitrix24 then needs no guess about the portal's time zone.
    deadline: `${due.toISOString().slice(0, 19)}+00:00`,
    title: t.callBack(event.phone),
    description: t.missedCall(event.sessionId, Math.round(event.call.waitSeconds ?? event.call.totalSeconds ?? 0)),
    ...(options.responsibleId ? { responsibleId: options.responsibleId } : {}),
  };
}
