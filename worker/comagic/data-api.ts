import * as z from "zod";
import {
  budgetFromLimits,
  budgetRefusal,
  dayReserve,
  limitWaitSeconds,
  limitWindowOf,
  minuteWaitSeconds,
  type Budget,
  type CoMagicPriority,
  type LimitWindow,
  type RawLimits,
} from "../domain/comagic-budget";
import { COMAGIC_LIMIT_WAIT_IN_PLACE_SECONDS, COMAGIC_READ_PAUSE_MS, COMAGIC_READ_TRIES } from "../domain/retry-policy";
import type { BudgetStore } from "../storage/comagic-budget";
import { type KvCache, kvJson } from "../storage/kv-json";

/** A failed Data API or Call API call, classified by CoMagic's `mnemonic` (its code is not unique). */
export class CoMagicError extends Error {
  constructor(
    readonly mnemonic: string,
    message: string,
    readonly transient: boolean,
    readonly retryAfterSeconds = 0,
  ) {
    super(message);
    this.name = "CoMagicError";
  }
}

/**
 * CoMagic's points say "not now": a `limit_exceeded` answer, or a deferrable call refused before it was sent
 * (`budget_*`). The work waits `retryAfterSeconds` and is never counted as failed (jobs/settle.ts).
 */
export class CoMagicDeferredError extends CoMagicError {
  constructor(
    mnemonic: string,
    message: string,
    retryAfterSeconds: number,
    /** The window that ran out, when known. */
    readonly window: LimitWindow | null,
  ) {
    super(mnemonic, message, true, retryAfterSeconds);
    this.name = "CoMagicDeferredError";
  }
}

export interface CachedToken {
  accessToken: string;
  /** Unix seconds. */
  expireAt: number;
}

/** Where login.user tokens are shared between isolates (KV in production). */
export interface TokenStore {
  get(key: string): Promise<CachedToken | null>;
  put(key: string, token: CachedToken, ttlSeconds: number): Promise<void>;
  delete(key: string): Promise<void>;
}

export type CoMagicAuth = { kind: "key"; token: string } | { kind: "login"; login: string; password: string };

export interface RpcResult {
  data: unknown;
  metadata: { total_items?: number } & Record<string, unknown>;
}

export interface CoMagicRpcClient {
  call(method: string, params?: Record<string, unknown>): Promise<RpcResult>;
  readonly loginCount: number;
}

export interface CoMagicRpcOptions {
  url: string;
  auth: CoMagicAuth;
  tokens: TokenStore;
  /** Which API this is ("Data API", "Call API"), for messages and the token cache key. */
  api: string;
  timeoutMs?: number;
  /** "feed" (the default) spends any point; "deferrable" leaves the day's reserve to the feed. */
  priority?: CoMagicPriority;
  /** Where the last points snapshot is shared; null or absent: only this client's own answers count. */
  budget?: BudgetStore | null;
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

// Tokens are dropped this long before CoMagic says they expire, so a call never starts with a dying one.
const TOKEN_MARGIN_SECONDS = 60;
// Workers KV refuses a TTL under 60 seconds.
const KV_MIN_TTL_SECONDS = 60;

// Limits come in several shapes (day/minute, hour only, `{}`, absent: comagic/FACTS.md §1.4): each field is read
// alone, and one odd field never makes the answer unreadable.
const limitNumber = z.number().finite().nonnegative().optional().catch(undefined);
const limitsSchema = z
  .object(Object.fromEntries(["day", "hour", "minute"].flatMap((w) => ["limit", "remaining", "reset"].map((f) => [`${w}_${f}`, limitNumber]))))
  .loose()
  .catch({});
const metadataLimits = z.object({ limits: limitsSchema.nullish() }).loose();
const limitParams = z.object({ limit_type: z.unknown() }).loose();
const successEnvelope = z.object({ result: z.object({ data: z.unknown(), metadata: z.record(z.string(), z.unknown()).nullish() }).loose() }).loose();
const errorEnvelope = z
  .object({
    error: z.object({
      code: z.number(),
      message: z.string().nullish(),
      data: z.object({ mnemonic: z.string().nullish(), field: z.string().nullish(), params: z.unknown().optional(), metadata: z.unknown().optional() }).loose().nullish(),
    }),
  })
  .loose();

/** `metadata.limits` of an answer (success: `result.metadata`; error: `error.data.metadata`), `{}` when absent. */
function readLimits(metadata: unknown): RawLimits {
  const parsed = metadataLimits.safeParse(metadata);
  if (!parsed.success || !parsed.data.limits) return {};
  return Object.fromEntries(Object.entries(parsed.data.limits).filter(([, v]) => typeof v === "number")) as RawLimits;
}
const loginResult = z.object({ access_token: z.string().min(1), expire_at: z.number().optional(), expire: z.number().optional() }).loose();

const PERMANENT = new Set([
  "auth_error",
  "ip_not_whitelisted",
  "forbidden",
  "account_inactive",
  "method_component_disabled",
  "parameter_component_disabled",
  "required_parameter_missed",
  "invalid_parameter_value",
  "unexpected_parameters",
  "invalid_parameters_combination",
  "data_type_error",
  "date_interval_limit_reached",
  "filter_prohibited",
  "sort_prohibited",
  "method_not_found",
  "error",
  "invalid_request",
  "parse_error",
  "access_token_blocked",
  "virtual_phone_number_not_found",
  "employee_not_found",
  "no_active_phone_number",
  "contact_in_blacklist",
  "own_virtual_phone_number_not_allowed",
  "tariff_restrictions",
]);
const TOKEN_REJECTED = new Set(["access_token_expired", "access_token_invalid"]);

const HINTS: Record<string, string> = {
  ip_not_whitelisted: "allow the worker in CoMagic: Администратор → Аккаунт → Правила и настройки безопасности → API (Workers have no fixed IP; see README)",
  auth_error: "check COMAGIC_LOGIN and COMAGIC_PASSWORD",
  forbidden: "the CoMagic user lacks the rights for this method",
  method_component_disabled: "the CoMagic account lacks the component (tariff option) for this method",
  access_token_blocked: "the CoMagic API key was blocked; make a new one",
};

async function cacheKey(api: string, url: string, auth: CoMagicAuth): Promise<string> {
  const who = auth.kind === "login" ? auth.login : "key";
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${api}|${url}|${who}`));
  return `comagic-token:${[...new Uint8Array(digest).slice(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * JSON-RPC 2.0 client for CoMagic's Data API and Call API. With login/password it logs in with login.user,
 * shares the token through the TokenStore until shortly before it expires, and on -32001 logs in again
 * once and repeats the call. Tokens never leave this module except into the store.
 *
 * Every answer's `metadata.limits` becomes the API's points snapshot, shared through the BudgetStore. A
 * deferrable client asks the snapshot before each call and refuses (CoMagicDeferredError, nothing sent) while the
 * day is within its reserve or a window is spent; `limit_exceeded` waits for the reset of the window it names.
 */
export function createCoMagicRpcClient(options: CoMagicRpcOptions): CoMagicRpcClient {
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = options.now ?? Date.now;
  const priority = options.priority ?? "feed";
  let token: CachedToken | null = null;
  let loginCount = 0;
  let requestId = 0;
  /** The last snapshot this client knows; undefined until the store has been asked. */
  let budget: Budget | null | undefined;

  /** The store is a hint: a write or read it fails only makes the next answer the one that tells. */
  async function share(snapshot: Budget): Promise<void> {
    budget = snapshot;
    await options.budget?.put(snapshot).catch(() => undefined);
  }

  async function remember(limits: RawLimits): Promise<void> {
    const snapshot = budgetFromLimits(options.api, limits, now());
    if (snapshot) await share(snapshot);
  }

  /** After limit_exceeded: deferrable work anywhere waits as long as this one, even when the answer had no limits. */
  async function pause(waitSeconds: number): Promise<void> {
    const at = now();
    await share({ ...(budget ?? { api: options.api, windows: {} }), seenAt: at, pausedUntil: at + waitSeconds * 1000 });
  }

  /** Before a call is sent: a deferrable one may be refused; a spent minute about to reset is waited out. */
  async function admit(method: string): Promise<void> {
    const minuteWait = minuteWaitSeconds(budget ?? null, now());
    if (minuteWait > 0 && minuteWait <= COMAGIC_LIMIT_WAIT_IN_PLACE_SECONDS) await sleep(minuteWait * 1000);
    if (priority === "deferrable") {
      if (budget === undefined) budget = (await options.budget?.get(options.api).catch(() => null)) ?? null;
      const refusal = budgetRefusal(budget, priority, now());
      if (refusal) {
        const day = budget?.windows.day;
        const left = refusal.reason === "day_reserve" && day ? ` (${day.remaining} of ${day.limit ?? "?"} points left; the last ${dayReserve(day.limit)} are kept for the feed)` : "";
        throw new CoMagicDeferredError(
          `budget_${refusal.reason}`,
          `CoMagic ${options.api} ${method}: not sent, deferrable work waits ${refusal.waitSeconds} s: ${refusal.reason}${left}`,
          refusal.waitSeconds,
          refusal.reason === "day_reserve" ? "day" : refusal.reason === "hour_spent" ? "hour" : refusal.reason === "minute_spent" ? "minute" : null,
        );
      }
    }
  }

  async function rpc(method: string, params: Record<string, unknown>): Promise<RpcResult> {
    requestId += 1;
    let response: Response;
    try {
      response = await doFetch(options.url, {
        method: "POST",
        headers: { "content-type": "application/json; charset=UTF-8" },
        body: JSON.stringify({ jsonrpc: "2.0", id: requestId, method, params }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
      });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      throw new CoMagicError(timedOut ? "timeout" : "network_error", `CoMagic ${options.api} ${method}: ${timedOut ? "no answer in time" : "network error"}`, true);
    }
    const text = await response.text().catch(() => "");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new CoMagicError(`http_${response.status}`, `CoMagic ${options.api} ${method}: HTTP ${response.status} without JSON`, response.status >= 500 || response.status === 429);
    }
    const failure = errorEnvelope.safeParse(body);
    if (failure.success) {
      const { code, message, data } = failure.data.error;
      const mnemonic = data?.mnemonic ?? String(code);
      const text = `CoMagic ${options.api} ${method}: ${mnemonic}${data?.field ? ` (${data.field})` : ""}: ${message ?? ""}${HINTS[mnemonic] ? `; ${HINTS[mnemonic]}` : ""}`;
      const limits = readLimits(data?.metadata);
      await remember(limits);
      if (mnemonic === "limit_exceeded") {
        // The error names its window (`data.params.limit_type`, data_api.txt:169,225); the reset is that window's.
        const params = limitParams.safeParse(data?.params);
        const window = limitWindowOf(params.success ? params.data.limit_type : undefined);
        const wait = limitWaitSeconds(window, limits, now());
        // A short wait is waited out in place (callWithRetries); a longer one holds back deferrable work everywhere.
        if (wait > COMAGIC_LIMIT_WAIT_IN_PLACE_SECONDS) await pause(wait);
        throw new CoMagicDeferredError(mnemonic, text, wait, window);
      }
      throw new CoMagicError(mnemonic, text, !PERMANENT.has(mnemonic) && !(TOKEN_REJECTED.has(mnemonic) && options.auth.kind === "key"));
    }
    const success = successEnvelope.safeParse(body);
    if (!success.success) throw new CoMagicError("unexpected_answer", `CoMagic ${options.api} ${method}: unexpected answer`, true);
    await remember(readLimits(success.data.result.metadata));
    return { data: success.data.result.data, metadata: success.data.result.metadata ?? {} };
  }

  async function login(auth: Extract<CoMagicAuth, { kind: "login" }>, key: string): Promise<CachedToken> {
    loginCount += 1;
    const result = loginResult.safeParse((await rpc("login.user", { login: auth.login, password: auth.password })).data);
    if (!result.success) throw new CoMagicError("unexpected_answer", `CoMagic ${options.api} login.user: no token in the answer`, true);
    // CoMagic documents `expire_at`; one of its pages shows `expire`. A session lives an hour.
    const expireAt = result.data.expire_at ?? result.data.expire ?? Math.floor(now() / 1000) + 3600;
    const fresh = { accessToken: result.data.access_token, expireAt };
    const ttl = Math.max(KV_MIN_TTL_SECONDS, expireAt - Math.floor(now() / 1000) - TOKEN_MARGIN_SECONDS);
    // A store that refuses the write (KV: one write a second a key) costs other isolates a login, never this one its token.
    await options.tokens.put(key, fresh, ttl).catch(() => undefined);
    // Set here, before the login's waiters resume: a read that starts meanwhile finds it and logs in no more.
    token = fresh;
    return fresh;
  }

  const usable = (t: CachedToken | null) => t !== null && t.expireAt - TOKEN_MARGIN_SECONDS > now() / 1000;

  // Reads that find the token dead at the same time (a batch's two reports) wait for one login.user, not one each.
  let loggingIn: Promise<CachedToken> | null = null;
  function loginOnce(auth: Extract<CoMagicAuth, { kind: "login" }>, key: string): Promise<CachedToken> {
    loggingIn ??= login(auth, key).finally(() => {
      loggingIn = null;
    });
    return loggingIn;
  }

  async function accessToken(key: string, auth: Extract<CoMagicAuth, { kind: "login" }>): Promise<string> {
    if (usable(token)) return (token as CachedToken).accessToken;
    const cached = await options.tokens.get(key);
    // Another read of this client may have logged in while the store answered.
    if (!usable(token) && usable(cached)) token = cached;
    if (!usable(token)) token = await loginOnce(auth, key);
    return (token as CachedToken).accessToken;
  }

  async function authorizedCall(method: string, params: Record<string, unknown>): Promise<RpcResult> {
    const { auth } = options;
    if (auth.kind === "key") return rpc(method, { ...params, access_token: auth.token });
    const key = await cacheKey(options.api, options.url, auth);
    const sent = await accessToken(key, auth);
    try {
      return await rpc(method, { ...params, access_token: sent });
    } catch (error) {
      if (!(error instanceof CoMagicError) || !TOKEN_REJECTED.has(error.mnemonic)) throw error;
      // The shared token died early (logged out, or expired ahead of expire_at): log in once more, unless another
      // read of this client, or another client through the shared store, already has (its token is not the one refused).
      if (loggingIn) token = await loggingIn;
      if (!token || token.accessToken === sent) {
        const stored = await options.tokens.get(key);
        if (stored !== null && usable(stored) && stored.accessToken !== sent) token = stored;
        else {
          token = null;
          if (stored) await options.tokens.delete(key);
          token = await loginOnce(auth, key);
        }
      }
      return rpc(method, { ...params, access_token: token.accessToken });
    }
  }

  /** Reads change nothing, so a transient failure is tried again here; writes (calls) never are. */
  async function callWithRetries(method: string, params: Record<string, unknown>): Promise<RpcResult> {
    const reads = method.startsWith("get.");
    for (let attempt = 1; ; attempt++) {
      try {
        await admit(method);
        return await authorizedCall(method, params);
      } catch (error) {
        const again = reads && attempt < COMAGIC_READ_TRIES && error instanceof CoMagicError && error.transient && error.retryAfterSeconds <= COMAGIC_LIMIT_WAIT_IN_PLACE_SECONDS;
        if (!again) throw error;
        await sleep(Math.max(COMAGIC_READ_PAUSE_MS * attempt, error.retryAfterSeconds * 1000));
      }
    }
  }

  return {
    get loginCount() {
      return loginCount;
    },
    call: (method, params = {}) => callWithRetries(method, params),
  };
}

/** A TokenStore on Workers KV. */
export function kvTokenStore(kv: KvCache): TokenStore {
  return kvJson(kv, z.object({ accessToken: z.string(), expireAt: z.number() }));
}
