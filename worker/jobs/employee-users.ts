import * as z from "zod";
import { userRows } from "../bitrix/users";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { type KvCache, kvJson } from "../storage/kv-json";
import type { BitrixClient } from "../bitrix/client";

/*
 * Which Bitrix24 user a CoMagic employee is, by the same email in both (get.employees and user.get), for
 * employees COMAGIC_EMPLOYEES does not list. Only with COMAGIC_MATCH_BY_EMAIL=true: a user can edit their own
 * email. user.get shows emails only with the `user_basic` scope (`user_brief` gives no contact data).
 */

/** Employees and users change rarely; a day's cache keeps this to a couple of calls an employee a day. */
const CACHE_SECONDS = 86_400;
const employeeRows = z.array(z.object({ id: z.union([z.number(), z.string()]).transform(String), email: z.string().nullish() }).loose());
const cached = z.object({ userId: z.string().nullable() });

export async function usersByEmployeeEmail(employeeIds: readonly string[], deps: { dataApi: CoMagicRpcClient; bitrix: BitrixClient; kv: KvCache | null }): Promise<Map<string, string>> {
  const cache = deps.kv ? kvJson(deps.kv, cached) : null;
  const found = new Map<string, string>();
  for (const employeeId of new Set(employeeIds)) {
    const key = `employee-user:v1:${employeeId}`;
    let entry = await cache?.get(key);
    if (!entry) {
      const { data } = await deps.dataApi.call("get.employees", { fields: ["id", "email"], filter: { field: "id", operator: "=", value: Number(employeeId) } });
      const email = employeeRows
        .safeParse(data)
        .data?.find((e) => e.id === employeeId)
        ?.email?.trim()
        .toLowerCase();
      const users = email ? userRows.safeParse(await deps.bitrix.call("user.get", { FILTER: { EMAIL: email, ACTIVE: true } })) : null;
      entry = { userId: users?.data?.find((u) => u.EMAIL?.trim().toLowerCase() === email)?.ID ?? null };
      await cache?.put(key, entry, CACHE_SECONDS);
    }
    if (entry.userId) found.set(employeeId, entry.userId);
  }
  return found;
}
