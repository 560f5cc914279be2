import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

const CANDIDATES = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** Debian's Chromium (installed by .ci/run); the browser tests skip without it, except in CI. */
export const chromiumPath = CANDIDATES.find((p): p is string => Boolean(p && existsSync(p)));

if (!chromiumPath) {
  const message = "No Chromium found (tried /usr/bin/chromium; set CHROMIUM_PATH). Install it with `apt-get install -y chromium`.";
  if (process.env.CI === "true") throw new Error(`${message} CI must run the browser tests.`);
  console.warn(`${message} Skipping the browser tests.`);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
