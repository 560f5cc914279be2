import * as z from "zod";
import { kvJson } from "./kv-json";

/*
 * The Bitrix24 token each open report page was opened with (the placement's AUTH_ID), so the worker can ask
 * Bitrix24 again whether the user may still see the report. It stays here and never goes back to the browser:
 * the page holds only its report token, which names the session. KV is enough: a missing or late entry only
 * sends the user back to Bitrix24 to open the report again, and the token expires with the page.
 */

const sessionSchema = z.object({ authId: z.string().min(1) });

export interface ReportSessionStore {
  put(memberId: string, sid: string, authId: string, ttlSeconds: number): Promise<void>;
  authIdOf(memberId: string, sid: string): Promise<string | null>;
  delete(memberId: string, sid: string): Promise<void>;
}

/** KV refuses a TTL under 60 seconds. */
const MIN_KV_TTL_SECONDS = 60;

const key = (memberId: string, sid: string) => `report-session:${memberId}:${sid}`;

export function kvReportSessions(kv: KVNamespace): ReportSessionStore {
  const store = kvJson(kv, sessionSchema);
  return {
    put: (memberId, sid, authId, ttlSeconds) => store.put(key(memberId, sid), { authId }, Math.max(MIN_KV_TTL_SECONDS, ttlSeconds)),
    authIdOf: async (memberId, sid) => (await store.get(key(memberId, sid)))?.authId ?? null,
    delete: (memberId, sid) => store.delete(key(memberId, sid)),
  };
}
