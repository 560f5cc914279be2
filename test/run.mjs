#!/usr/bin/env node
/*
 * `npm test`'s runner. The workerd shards (test/vitest.config.ts) share nothing, and their files mostly wait
 * (queue batches, retries, lagging reports), but Vitest runs the projects of one pool one after another. So each
 * shard gets its own Vitest process, side by side; each one's output is printed whole when it ends, then a
 * summary. With arguments (`npm test -- test/unit`), it runs one Vitest with them instead.
 */
import { spawn } from "node:child_process";

const vitest = ["vitest", "run", "--config", "test/vitest.config.ts"];
const args = process.argv.slice(2);
const groups = args.length
  ? [{ name: "vitest", projects: [], extra: args }]
  : [
      { name: "worker-1", projects: ["worker-1"] },
      { name: "worker-2", projects: ["worker-2"] },
      { name: "worker-3", projects: ["worker-3"] },
      { name: "worker-4", projects: ["worker-4"] },
      // These two finish well before the isolated shards: at a lower CPU priority, they leave the two cores to the
      // shards' start-up (a Miniflare per file) when everything starts at once.
      { name: "worker-shared", projects: ["worker-shared"], nice: 10 },
      // The browser tests start wrangler dev and Chromium per file: the longest group, so it is not held back.
      { name: "browser", projects: ["browser"] },
      { name: "unit", projects: ["unit"], nice: 10 },
    ];

const started = Date.now();
const runs = groups.map(
  (group) =>
    new Promise((resolve) => {
      const argv = [...vitest, ...group.projects.flatMap((p) => ["--project", p]), ...(group.extra ?? [])];
      const command = group.nice ? ["nice", "-n", String(group.nice), "npx"] : ["npx"];
      const child = spawn(command[0], [...command.slice(1), ...argv], { env: { ...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? "1" }, stdio: ["ignore", "pipe", "pipe"] });
      const output = [];
      child.stdout.on("data", (chunk) => output.push(chunk));
      child.stderr.on("data", (chunk) => output.push(chunk));
      child.on("close", (code) => {
        process.stdout.write(`\n===== ${group.name} (${Math.round((Date.now() - started) / 1000)} s, exit ${code}) =====\n`);
        process.stdout.write(Buffer.concat(output));
        resolve({ name: group.name, code, seconds: Math.round((Date.now() - started) / 1000), output: Buffer.concat(output).toString() });
      });
    }),
);
const results = await Promise.all(runs);
// CI keeps only the tail of what a run prints: a failed group's failures are repeated here, just above the summary.
for (const r of results.filter((r) => r.code !== 0)) {
  const plain = r.output.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "");
  const from = plain.search(/⎯+ Failed Tests|⎯+ Unhandled Errors|FAIL /);
  const lines = (from < 0 ? plain : plain.slice(from)).split("\n");
  console.log(`\n===== ${r.name} failed: =====`);
  console.log(lines.slice(0, 80).join("\n"));
}
console.log("\n===== npm test =====");
for (const r of results) console.log(`${r.code === 0 ? "passed" : "FAILED"}  ${r.name}  (${r.seconds} s)`);
console.log(`all tests: ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
