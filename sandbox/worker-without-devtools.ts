/**
 * The worker as `wrangler dev` runs it (same wrangler.toml, local Queues, KV, D1 and rate limits), but with the
 * devtools inspector off. `wrangler dev` always attaches one and forwards every console.log through it to the
 * terminal, which a deployed Worker never does; the benchmarks use this to measure the worker's own cost.
 * Usage: tsx sandbox/worker-without-devtools.ts <port> <env file> <state dir>
 */
import { readFileSync } from "node:fs";
import { unstable_startWorker } from "wrangler";

const [port, envFile, stateDir] = process.argv.slice(2);
if (!port || !envFile || !stateDir) throw new Error("usage: worker-without-devtools.ts <port> <env file> <state dir>");
const vars = readFileSync(envFile, "utf8")
  .split("\n")
  .filter((line) => line.includes("="))
  .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)] as const);
const worker = await unstable_startWorker({
  config: "wrangler.toml",
  bindings: Object.fromEntries(vars.map(([name, value]) => [name, { type: "plain_text" as const, value }])),
  dev: { inspector: false, persist: stateDir, watch: false, liveReload: false, server: { hostname: "127.0.0.1", port: Number(port) } },
});
await worker.ready;
const stop = () => void worker.dispose().finally(() => process.exit(0));
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
