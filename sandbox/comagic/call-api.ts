import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { RpcError } from "./rpc-error";

/** The CoMagic account's people and rented numbers, shared by the Data API (get.employees) and the Call API. */
export const SANDBOX_EMPLOYEES = [
  { id: 25, full_name: "Ivan Admin", email: "admin@shop.example.ru", phone_numbers: [{ phone_number: "79260000001", status: "active" }] },
  { id: 26, full_name: "Maria Sales", email: "maria@shop.example.ru", phone_numbers: [{ phone_number: "79260000002", status: "active" }] },
];
export const SANDBOX_VIRTUAL_NUMBERS = ["74993720692"];

/**
 * CoMagic Call API v4.0 (FACTS.md §3): login.user with its own tokens, and start.employee_call validated
 * as documented (-32007 for an unknown virtual number, employee_not_found, E.164 digits). Calls are recorded.
 */
export function createCallApiSandbox(credentials: () => { login: string; password: string }, recordCall: (row: Record<string, unknown>) => void = () => {}) {
  const tokens = new Set<string>();
  const calls: Record<string, unknown>[] = [];
  let nextSession = 237_859_081;

  function startEmployeeCall(params: Record<string, unknown>) {
    if (!tokens.has(String(params.access_token))) throw new RpcError(-32001, "access_token_invalid", "Access token is invalid");
    for (const field of ["first_call", "virtual_phone_number", "contact", "employee"]) {
      if (params[field] === undefined) throw new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field });
    }
    if (params.first_call !== "employee" && params.first_call !== "contact") throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: "first_call" });
    if (!SANDBOX_VIRTUAL_NUMBERS.includes(String(params.virtual_phone_number))) throw new RpcError(-32007, "virtual_phone_number_not_found", "Virtual phone number not found");
    if (!/^\d{10,15}$/.test(String(params.contact))) throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: "contact" });
    const employee = params.employee as { id?: unknown } | null;
    if (!SANDBOX_EMPLOYEES.some((e) => e.id === Number(employee?.id))) throw new RpcError(-32602, "employee_not_found", "Employee not found", { field: "employee.id" });
    if (params.direction !== undefined && params.direction !== "in" && params.direction !== "out")
      throw new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field: "direction" });
    const callSessionId = nextSession++;
    calls.push({ method: "start.employee_call", ...params, access_token: undefined, call_session_id: callSessionId });
    // The call then shows in get.calls_report as CoMagic records it: `direction` defaults to `in` (FACTS-calls §4).
    recordCall({
      id: callSessionId,
      start_time: new Date(Date.now() + 3 * 3_600_000).toISOString().slice(0, 19).replace("T", " "),
      direction: params.direction ?? "in",
      source: "callapi",
      is_lost: false,
      contact_phone_number: String(params.contact),
      total_duration: 30,
      talk_duration: 25,
      wait_duration: 5,
      call_api_external_id: params.external_id ?? null,
      last_answered_employee_id: Number(employee?.id),
    });
    return { data: { call_session_id: callSessionId } };
  }

  const app = new Hono();
  app.post("/comagic/callapi/v4.0", async (c) => {
    const request = (await c.req.json().catch(() => null)) as { id?: unknown; method?: string; params?: Record<string, unknown> } | null;
    const id = request?.id ?? null;
    try {
      if (!request || typeof request.method !== "string") throw new RpcError(-32600, "invalid_request", "Invalid Request The JSON sent is not a valid Request object");
      const params = request.params ?? {};
      if (request.method === "login.user") {
        const { login, password } = credentials();
        if (params.login !== login || params.password !== password) throw new RpcError(-32001, "auth_error", "Login or password is wrong");
        const token = randomBytes(24).toString("hex");
        tokens.add(token);
        return c.json({ jsonrpc: "2.0", id, result: { data: { access_token: token, expire_at: Math.floor(Date.now() / 1000) + 3600 } } });
      }
      if (request.method === "start.employee_call") return c.json({ jsonrpc: "2.0", id, result: startEmployeeCall(params) });
      throw new RpcError(-32601, "method_not_found", "The method does not exist");
    } catch (error) {
      const e = error instanceof RpcError ? error : new RpcError(-32603, "internal_error", "Internal error, contact the support service");
      return c.json({ jsonrpc: "2.0", id, error: { code: e.code, message: e.message, data: { mnemonic: e.mnemonic, ...e.extra } } });
    }
  });
  app.get("/_sandbox/comagic/calls-made", (c) => c.json(calls));
  app.post("/_sandbox/comagic/calls-made/reset", (c) => {
    calls.length = 0;
    return c.json({ ok: true });
  });
  return { app };
}
