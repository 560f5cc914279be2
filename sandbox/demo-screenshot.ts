/**
 * `npx tsx sandbox/demo-screenshot.ts [docs/img/report-demo.png]`: the README's picture of the report, taken with
 * Chromium (playwright-core, Debian's /usr/bin/chromium or CHROMIUM_PATH) from a running `npm run demo`, as the
 * portal's administrator opens it from CRM Analytics: last 7 days (the days whose ad cost the worker has imported),
 * last non-direct click, grouped by CoMagic campaign so that cost and ROMI show.
 */
import { chromium } from "playwright-core";
import { chromiumPath } from "../test/helpers/chromium";
import { sandboxUrl } from "./dev-settings";

const out = process.argv[2] ?? "docs/img/report-demo.png";
if (!chromiumPath) throw new Error("No Chromium found: install it (apt-get install chromium) or set CHROMIUM_PATH");
const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${sandboxUrl}/_sandbox/app?user=1&lang=en`);
  const app = page.frameLocator("#app");
  await app.locator("#apply").waitFor({ timeout: 20_000 });
  await app.locator("#period").selectOption("7d");
  await app.locator("#model").selectOption("last_non_direct");
  await app.locator("#grouping").selectOption("comagic_campaign");
  await Promise.all([page.waitForEvent("framenavigated", { predicate: (f) => f.name() === "app", timeout: 20_000 }), app.locator("#apply").click()]);
  await app.locator("#report").waitFor();
  await page.screenshot({ path: out, fullPage: true });
  console.log(`Saved ${out}`);
} finally {
  await browser.close();
}
