import { cpus, release } from "node:os";
import { installSandboxApp, sandboxWorkerVars, startLocalWorker, type LocalWorker } from "../sandbox/local-worker";
import { startSandbox, type RunningSandbox } from "../sandbox/server";
import { createBitrixClient } from "../worker/bitrix/client";
import { ensureCrmUserFields } from "../worker/bitrix/user-fields";

export const TOKEN = "bench-token";
/** 32+ characters: the worker refuses a shorter admin token. */
export const ADMIN = "bench-admin-token-0123456789abcdef0123";

export function machine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? "unknown CPU"}, Linux ${release()}, Node ${process.version}`;
}

/** The worker wired to a running sandbox, under wrangler dev unless `devtools` is false. */
export async function startBenchWorker(sandbox: RunningSandbox, vars: Record<string, string>, stateDir: string, options: { devtools?: boolean; port?: number } = {}): Promise<LocalWorker> {
  const worker = await startLocalWorker({
    vars: sandboxWorkerVars(sandbox, { COMAGIC_WEBHOOK_TOKEN: TOKEN, ADMIN_TOKEN: ADMIN, ALLOWED_ORIGINS: "https://shop.example.ru", ...vars }),
    stateDir,
    output: process.env.BENCH_WORKER_OUTPUT === "inherit" ? "inherit" : "ignore",
    ...options,
  });
  await installSandboxApp(sandbox, worker.url).catch(() => undefined);
  return worker;
}

/** The sandbox (real Bitrix24 limits) and the worker under wrangler dev, wired together. */
export async function startStack(
  vars: Record<string, string> = {},
  stateDir = `.wrangler/bench-${process.pid}`,
  prepare?: (sandbox: RunningSandbox) => Promise<unknown>,
): Promise<{ sandbox: RunningSandbox; worker: LocalWorker }> {
  const sandbox = await startSandbox({ port: 0 });
  await ensureCrmUserFields(createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 10_000 }));
  // Portal settings first: the worker reads the CRM mode when the app installs, and keeps it five minutes.
  await prepare?.(sandbox);
  return { sandbox, worker: await startBenchWorker(sandbox, vars, stateDir) };
}

export async function json<T>(url: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(url, body === undefined ? { headers } : { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${url} answered HTTP ${res.status}: ${text.slice(0, 300)}`);
  }
}

let phoneSeq = Math.floor(Math.random() * 1e6);
/** A fresh valid Russian mobile number in E.164. */
export function freshPhone(): string {
  phoneSeq += 1;
  return `+79${String(100_000_000 + (phoneSeq % 900_000_000))}`;
}
let idSeq = 5_000_000_000 + Math.floor(Math.random() * 1e8);
export const freshId = () => ++idSeq;

/** Runs `work` over items with at most `limit` in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i] as T, i);
      }
    }),
  );
  return results;
}

export async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number, stepMs = 250): Promise<boolean> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return false;
}

/** Waits until the sandbox has seen no REST request for `quietMs`. */
export async function waitForQuiet(sandboxUrl: string, quietMs: number, timeoutMs: number): Promise<void> {
  let last = -1;
  let since = Date.now();
  const started = Date.now();
  while (Date.now() - since < quietMs && Date.now() - started < timeoutMs) {
    const { httpRequests } = await json<{ httpRequests: number }>(`${sandboxUrl}/_sandbox/stats`);
    if (httpRequests !== last) {
      last = httpRequests;
      since = Date.now();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
