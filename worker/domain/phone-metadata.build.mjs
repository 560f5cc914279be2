// Writes worker/domain/phone-metadata.json: libphonenumber-js's small ("min") metadata for every country, with the
// full ("max") metadata, which tells number types apart, for the countries click-to-call may dial.
// Run after updating libphonenumber-js: `node worker/domain/phone-metadata.build.mjs`. A unit test checks it is current.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/**
 * Countries whose number types (mobile, fixed line, premium rate …) the worker can tell apart, so CALL_COUNTRIES
 * may name them. Full metadata for all ~245 regions would add ~20 KB gzipped to the Worker; these add ~3 KB.
 */
export const TYPED_COUNTRIES = [
  "RU", "KZ", "BY", "UZ", "KG", "AM", "GE", "AZ", "UA", "MD", "TJ", "TM", "LV", "LT", "EE",
  "PL", "DE", "FI", "TR", "AE", "IL", "GB", "US", "CN", "CY",
];

export function buildMetadata() {
  const min = require("libphonenumber-js/metadata.min.json");
  const max = require("libphonenumber-js/metadata.max.json");
  const countries = { ...min.countries };
  for (const code of TYPED_COUNTRIES) countries[code] = max.countries[code];
  return { ...min, countries, typedCountries: TYPED_COUNTRIES };
}

const target = new URL("./phone-metadata.json", import.meta.url);
if (process.argv[1] && new URL(`file://${process.argv[1]}`).href === import.meta.url) {
  writeFileSync(target, `${JSON.stringify(buildMetadata())}\n`);
  console.log(`worker/domain/phone-metadata.json: ${readFileSync(target).length} B`);
}
