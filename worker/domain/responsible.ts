import type { LeadEvent } from "./lead-event";

/** Who gets a new lead: the Bitrix24 user of the CoMagic employee who answered, else a configured default. */
export interface ResponsibleRules {
  /** CoMagic employee id → Bitrix24 user id (COMAGIC_EMPLOYEES, read the other way round). */
  userOfEmployee: Readonly<Record<string, string>>;
  /** DEFAULT_RESPONSIBLE_ID; null leaves it to Bitrix24 (the webhook's user). */
  defaultUserId: string | null;
  /** LOST_CALL_RESPONSIBLE_ID: who calls back a client nobody answered. */
  lostCallUserId: string | null;
}

export function responsibleUserId(event: LeadEvent, rules: ResponsibleRules): string | null {
  if (event.call?.lost && rules.lostCallUserId) return rules.lostCallUserId;
  const answered = event.employeeId ? rules.userOfEmployee[event.employeeId] : undefined;
  return answered ?? rules.defaultUserId;
}

/** COMAGIC_EMPLOYEES maps Bitrix24 users to CoMagic employees; a lead needs the way back. */
export function usersByEmployee(employees: Readonly<Record<string, number>>): Record<string, string> {
  return Object.fromEntries(Object.entries(employees).map(([user, employee]) => [String(employee), user]));
}
