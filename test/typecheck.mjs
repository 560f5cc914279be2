// `npm run typecheck`: the worker (with tests and bench), the sandbox and the snippet, type-checked side by side
// (three tsc runs one after another took twice as long on two cores). Exits non-zero if any fails.
import { spawn } from "node:child_process";

const projects = [".", "sandbox", "snippet"];
const runs = projects.map(
  (project) =>
    new Promise((resolve) => {
      const child = spawn("npx", ["tsc", "-p", project], { stdio: ["ignore", "pipe", "pipe"], shell: process.platform === "win32" });
      let output = "";
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
      child.on("close", (code) => resolve({ project, code, output }));
    }),
);
let failed = false;
for (const { project, code, output } of await Promise.all(runs)) {
  if (code !== 0) {
    failed = true;
    process.stdout.write(`tsc -p ${project} failed:\n${output}\n`);
  }
}
process.exit(failed ? 1 : 0);
