/*
 * Which Bitrix24 user each CoMagic employee is, as the settings page proposes it: the mapping saved before
 * (COMAGIC_EMPLOYEES), else the one user with the same email, else the one user with the same full name; where
 * none of these is sure (no match, or two users alike), nobody, and the administrator chooses from the list.
 */

export interface Employee {
  id: string;
  fullName: string;
  email: string | null;
}

export interface PortalUser {
  id: string;
  name: string;
  email: string | null;
}

export type MatchedBy = "saved" | "email" | "name" | "none";

export interface EmployeeMatch {
  employee: Employee;
  userId: string | null;
  by: MatchedBy;
}

const normal = (text: string | null | undefined) => (text ?? "").trim().replace(/\s+/g, " ").toLowerCase();

/** A user's name both ways round: Bitrix24 keeps NAME and LAST_NAME apart, CoMagic one full_name either way. */
export function userNames(first: string | null | undefined, last: string | null | undefined): string[] {
  const a = normal(`${first ?? ""} ${last ?? ""}`);
  const b = normal(`${last ?? ""} ${first ?? ""}`);
  return a ? [a, b] : [];
}

/** `saved` is COMAGIC_EMPLOYEES: Bitrix24 user id → CoMagic employee id. */
export function matchEmployees(employees: readonly Employee[], users: readonly (PortalUser & { names: string[] })[], saved: Readonly<Record<string, string | number>>): EmployeeMatch[] {
  const known = new Set(users.map((u) => u.id));
  const savedUserOf = new Map(Object.entries(saved).map(([userId, employeeId]) => [String(employeeId), userId]));
  return employees.map((employee) => {
    const savedUser = savedUserOf.get(employee.id);
    if (savedUser && known.has(savedUser)) return { employee, userId: savedUser, by: "saved" };
    const email = normal(employee.email);
    const byEmail = email ? users.filter((u) => normal(u.email) === email) : [];
    if (byEmail.length === 1) return { employee, userId: byEmail[0]?.id ?? null, by: "email" };
    const name = normal(employee.fullName);
    const byName = name ? users.filter((u) => u.names.includes(name)) : [];
    if (byEmail.length === 0 && byName.length === 1) return { employee, userId: byName[0]?.id ?? null, by: "name" };
    return { employee, userId: null, by: "none" };
  });
}

/** COMAGIC_EMPLOYEES from the page's choices; a user chosen for two employees is refused (a user calls as one employee). */
export function employeeMap(choices: readonly { employeeId: string; userId: string }[]): { ok: true; map: Record<string, number> } | { ok: false; userId: string } {
  const map: Record<string, number> = {};
  for (const { employeeId, userId } of choices) {
    if (userId in map) return { ok: false, userId };
    map[userId] = Number(employeeId);
  }
  return { ok: true, map };
}
