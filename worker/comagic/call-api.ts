import * as z from "zod";
import { CoMagicError, type CoMagicRpcClient } from "./data-api";

const employeeRows = z.array(z.object({ id: z.number(), email: z.string().nullish(), full_name: z.string().nullish() }).loose());

/** The CoMagic employee with this email (Data API get.employees), or null. */
export async function findEmployeeIdByEmail(dataApi: CoMagicRpcClient, email: string): Promise<number | null> {
  const { data } = await dataApi.call("get.employees", { fields: ["id", "email", "full_name"], filter: { field: "email", operator: "=", value: email }, limit: 10 });
  const rows = employeeRows.safeParse(data);
  if (!rows.success) throw new CoMagicError("unexpected_answer", "CoMagic Data API get.employees: rows not as expected", true);
  return rows.data.find((r) => r.email?.toLowerCase() === email.toLowerCase())?.id ?? null;
}

const callStarted = z.object({ call_session_id: z.union([z.number(), z.string()]).transform(String) }).loose();

/**
 * Rings the employee first, then the client (`start.employee_call`, first_call=employee). Numbers are E.164
 * digits without "+", as the Call API wants them. `direction` defaults to `in` there (FACTS-calls §4): sent as
 * `out`, CoMagic records the call as outbound, so it never comes back as a new inbound client.
 */
export async function startEmployeeCall(callApi: CoMagicRpcClient, call: { employeeId: number; contactE164: string; virtualNumber: string; externalId: string }): Promise<string> {
  const { data } = await callApi.call("start.employee_call", {
    first_call: "employee",
    direction: "out",
    virtual_phone_number: call.virtualNumber.replace(/^\+/, ""),
    contact: call.contactE164.replace(/^\+/, ""),
    employee: { id: call.employeeId },
    external_id: call.externalId,
  });
  const started = callStarted.safeParse(data);
  if (!started.success) throw new CoMagicError("unexpected_answer", "CoMagic Call API start.employee_call: no call_session_id", false);
  return started.data.call_session_id;
}
