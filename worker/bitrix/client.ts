import { BITRIX_RATE_LIMIT_PAUSE_MS } from "../domain/retry-policy";
import * as z from "zod";
import { BitrixError, classifyBitrixError } from "./errors";
import { encodeBitrixQuery, neutralizeBatchReferences } from "./query-string";
import { RequestBudgetError, type RequestBudget } from "./errors";

export interface BitrixCommand {
  method: string;
  params: Record<string, unknown>;
}

export type CommandOutcome = { ok: true; result: unknown } | { ok: false; error: BitrixError };

export interface BitrixClient {
  call(method: string, params?: Record<string, unknown>): Promise<unknown>;
  /**
   * Runs commands through `batch` (50 a request), each with its own outcome. `readOnly` commands are
   * repeated on any transient failure; writes only when Bitrix refused them before doing anything.
   */
  batch(commands: Record<string, BitrixCommand>, options: { readOnly: boolean }): Promise<Record<string, CommandOutcome>>;
  readonly requestCount: number;
}

export interface BitrixClientOptions {
  /** The inbound webhook base, ending in `/`. */
  baseUrl: string;
  timeoutMs: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Tries per request while Bitrix answers QUERY_LIMIT_EXCEEDED (or any transient error, for reads). */
  maxTries?: number;
  /**
   * OAuth (application) calls: the token goes in the `auth` parameter; on `expired_token` it is refreshed
   * once and the call repeated. Webhook calls carry their credentials in `baseUrl` and leave this out.
   */
  oauth?: { token(): Promise<string>; refresh(): Promise<string> };
  /**
   * The portal's request budget (bitrix/request-budget.ts): a permit before every HTTP request, a `batch` being one,
   * and word back when Bitrix24 refused one anyway. Without it, requests go out as fast as they come.
   */
  budget?: RequestBudget;
}

const BATCH_MAX_COMMANDS = 50;

const errorEnvelope = z.object({ error: z.union([z.string(), z.number()]).transform(String), error_description: z.string().nullish() }).loose();
const successEnvelope = z.object({ result: z.unknown() }).loose();

/** `[]` is how Bitrix (PHP) writes an empty map. */
const phpMap = <T extends z.ZodType>(value: T) => z.union([z.record(z.string(), value), z.array(z.never()).transform(() => ({}) as Record<string, z.infer<T>>)]);

const batchResult = z.object({
  result: phpMap(z.unknown()),
  result_error: phpMap(z.union([errorEnvelope, z.string()])),
});

export function createBitrixClient(options: BitrixClientOptions): BitrixClient {
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const maxTries = options.maxTries ?? 4;
  let requestCount = 0;

  async function requestOnce(method: string, params: Record<string, unknown>): Promise<unknown> {
    await options.budget?.acquire();
    requestCount += 1;
    let response: Response;
    try {
      response = await doFetch(`${options.baseUrl}${method}.json`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(params),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      const code = timedOut ? "TIMEOUT" : "NETWORK_ERROR";
      return Promise.reject(new BitrixError(code, `Bitrix24 ${method}: ${timedOut ? "no answer in time" : "network error"}`, true, "unknown"));
    }
    let text: string;
    try {
      text = await response.text();
    } catch {
      throw new BitrixError("NETWORK_ERROR", `Bitrix24 ${method}: connection lost while reading`, true, "unknown");
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw classifyBitrixError("ERROR_UNEXPECTED_ANSWER", `${method} answered HTTP ${response.status} without JSON`, Math.max(response.status, 500));
    }
    const failure = errorEnvelope.safeParse(body);
    if (failure.success) {
      if (failure.data.error === "QUERY_LIMIT_EXCEEDED") await options.budget?.refused();
      throw classifyBitrixError(failure.data.error, failure.data.error_description ?? "", response.status);
    }
    const success = successEnvelope.safeParse(body);
    if (!response.ok || !success.success) {
      throw classifyBitrixError("ERROR_UNEXPECTED_ANSWER", `${method} answered HTTP ${response.status} with an unknown envelope`, 500);
    }
    return success.data.result;
  }

  async function authorized(method: string, params: Record<string, unknown>): Promise<unknown> {
    const { oauth } = options;
    if (!oauth) return requestOnce(method, params);
    try {
      return await requestOnce(method, { ...params, auth: await oauth.token() });
    } catch (error) {
      // Bitrix asks apps to refresh only when told the token expired, never ahead of time.
      if (!(error instanceof BitrixError) || error.code !== "expired_token") throw error;
      return requestOnce(method, { ...params, auth: await oauth.refresh() });
    }
  }

  async function request(method: string, params: Record<string, unknown>, readOnly: boolean): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await authorized(method, params);
      } catch (error) {
        // The budget's own refusal already waited as long as a request may: the queue retries it, not this loop.
        const repeatable =
          error instanceof BitrixError && !(error instanceof RequestBudgetError) && error.transient && (error.code === "QUERY_LIMIT_EXCEEDED" || (readOnly && error.retryAfterSeconds === 0));
        if (!repeatable || attempt >= maxTries) throw error;
        await sleep(BITRIX_RATE_LIMIT_PAUSE_MS * attempt);
      }
    }
  }

  async function batchChunk(commands: [string, BitrixCommand][], readOnly: boolean): Promise<Record<string, CommandOutcome>> {
    const cmd = Object.fromEntries(commands.map(([key, c]) => [key, `${c.method}?${encodeBitrixQuery(neutralizeBatchReferences(c.params) as Record<string, unknown>)}`]));
    const outcomes: Record<string, CommandOutcome> = {};
    let parsed: z.infer<typeof batchResult>;
    try {
      const result = await request("batch", { halt: 0, cmd }, readOnly);
      const check = batchResult.safeParse(result);
      if (!check.success) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", "Bitrix24 batch: unexpected result shape", true, "unknown");
      parsed = check.data;
    } catch (error) {
      const failure = error instanceof BitrixError ? error : new BitrixError("ERROR", String(error), true, "unknown");
      for (const [key] of commands) outcomes[key] = { ok: false, error: failure };
      return outcomes;
    }
    for (const [key, command] of commands) {
      const error = parsed.result_error[key];
      if (error !== undefined) {
        const { code, description } = typeof error === "string" ? { code: "", description: error } : { code: error.error, description: error.error_description ?? "" };
        outcomes[key] = { ok: false, error: classifyBitrixError(code, `${command.method}: ${description}`, 400) };
      } else if (key in parsed.result) {
        outcomes[key] = { ok: true, result: parsed.result[key] };
      } else {
        outcomes[key] = { ok: false, error: new BitrixError("ERROR_UNEXPECTED_ANSWER", `Bitrix24 batch: no result for ${command.method}`, true, "unknown") };
      }
    }
    return outcomes;
  }

  return {
    get requestCount() {
      return requestCount;
    },
    call: (method, params = {}) => request(method, params, false),
    async batch(commands, { readOnly }) {
      const entries = Object.entries(commands);
      const outcomes: Record<string, CommandOutcome> = {};
      for (let i = 0; i < entries.length; i += BATCH_MAX_COMMANDS) {
        Object.assign(outcomes, await batchChunk(entries.slice(i, i + BATCH_MAX_COMMANDS), readOnly));
      }
      return outcomes;
    },
  };
}
