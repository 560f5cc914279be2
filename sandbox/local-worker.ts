import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { SandboxPortal } from "./server";

/** Settings that wire a local worker to a sandbox portal (the root one, or a named one): Bitrix24 webhook and app, CoMagic Data and Call APIs. */
export function sandboxWorkerVars(sandbox: SandboxPortal, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    BITRIX_WEBHOOK_URL: sandbox.bitrixWebhookUrl,
    BITRIX_TIMEOUT_MS: "10000",
    BITRIX_APP_CLIENT_ID: "local.sandbox-app",
    BITRIX_APP_CLIENT_SECRET: "sandbox-app-secret",
    BITRIX_OAUTH_URL: `${sandbox.url}/oauth/token/`,
    COMAGIC_DATA_API_URL: sandbox.dataApiUrl,
    COMAGIC_CALL_API_URL: sandbox.callApiUrl,
    COMAGIC_LOGIN: sandbox.comagic.login,
    COMAGIC_PASSWORD: sandbox.comagic.password,
    COMAGIC_VIRTUAL_NUMBER: "74993720692",
    COMAGIC_EMPLOYEES: '{"1":25,"2":26}',
    TAB_TOKEN_SECRET: "sandbox-tab-token-key-0123456789abcdef0123",
    // Seals stored portals' secrets (PUT /admin/portals/<key>): 32 bytes, base64. A local key, never a deploy's.
    SETTINGS_KEY: "c2FuZGJveC1zZXR0aW5ncy1rZXktMzItYnl0ZXMtISE=",
    // Local runs see their follow-ups after ENRICH_DELAY_SECONDS, not at the next 10-minute slot.
    ENRICH_SLOT_SECONDS: "0",
    ...overrides,
  };
}

/** Installs the app on a sandbox portal as its administrator would, through the worker's install URL. */
export async function installSandboxApp(sandbox: SandboxPortal, workerUrl: string): Promise<void> {
  const tokens = (await (await fetch(`${sandbox.url}/_sandbox/bitrix/app/tokens`, { method: "POST", body: JSON.stringify({ userId: 1 }) })).json()) as Record<string, string | number>;
  const form = new URLSearchParams(Object.entries(tokens).map(([k, v]) => [k, String(v)]));
  const res = await fetch(`${workerUrl}/bitrix/install?DOMAIN=${encodeURIComponent(String(tokens.DOMAIN))}&PROTOCOL=0`, { method: "POST", body: form });
  if (!res.ok) throw new Error(`Installing the app failed: HTTP ${res.status} ${await res.text()}`);
}

export interface LocalWorker {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * Runs the worker with `wrangler dev` (local Queues and KV), its settings in an env file of its own so a
 * developer's .dev.vars is left alone. Resolves once /health answers. `devtools: false` runs the same worker
 * without the devtools inspector (see worker-without-devtools.ts), for measurements. The sandboxes listen on
 * 127.0.0.1 over plain http, which the worker allows only with ALLOW_LOOPBACK_HTTP: every local worker sets it.
 */
export async function startLocalWorker(options: { vars: Record<string, string>; port?: number; stateDir?: string; output?: "inherit" | "ignore"; devtools?: boolean }): Promise<LocalWorker> {
  const port = options.port ?? (await freePort());
  const stateDir = options.stateDir ?? ".wrangler/state";
  mkdirSync(stateDir, { recursive: true });
  const envFile = `${stateDir}/worker.env`;
  writeFileSync(
    envFile,
    Object.entries({ ALLOW_LOOPBACK_HTTP: "true", ...options.vars })
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
  );
  const command =
    options.devtools === false
      ? ["tsx", "sandbox/worker-without-devtools.ts", String(port), envFile, stateDir]
      : [
          "wrangler",
          "dev",
          "--local",
          "--ip",
          "127.0.0.1",
          "--port",
          String(port),
          "--inspector-port",
          String(await freePort()),
          "--env-file",
          envFile,
          "--persist-to",
          stateDir,
          "--show-interactive-dev-session=false",
        ];
  const child = spawn("npx", command, {
    stdio: ["ignore", options.output ?? "inherit", options.output ?? "inherit"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    detached: true,
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    // wrangler starts workerd as a child: signal the whole process group.
    if (child.pid) process.kill(-child.pid, "SIGINT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (child.exitCode === null && child.pid) process.kill(-child.pid, "SIGKILL");
  };
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.status === 200 || res.status === 503) return { url, process: child, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error("wrangler dev did not answer /health within a minute");
}
