// Writes worker/domain/phone-metadata.json: libphonenumber-js's small ("min") metadata for every country, with the
// full ("max") metadata, which tells number types apart, for the countries click-to-call may dial, and without
// the display formats nothing here uses.
// Run after updating libphonenumber-js: `node worker/domain/phone-metadata.build.mjs`. A unit test checks it is current.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/**
 * Countries whose number types (mobile, fixed line, premium rate …) the worker can tell apart, so CALL_COUNTRIES
 * may name them. Full metadata for all ~245 regions would add ~20 KB gzipped to the Worker; these add ~3 KB.
 */
export const TYPED_COUNTRIES = ["RU", "KZ", "BY", "UZ", "KG", "AM", "GE", "AZ", "UA", "MD", "TJ", "TM", "LV", "LT", "EE", "PL", "DE", "FI", "TR", "AE", "IL", "GB", "US", "CN", "CY"];

/**
 * Index of a country's number formats in libphonenumber-js's metadata arrays. Formats only lay numbers out
 * for display; parsing, validation and types never read them, and they are ~40% of the metadata. A unit
 * test checks that parsing every country's example number in every spelling gives the same answer without.
 */
const FORMATS = 4;

export function buildMetadata() {
  const min = require("libphonenumber-js/metadata.min.json");
  const max = require("libphonenumber-js/metadata.max.json");
  const countries = {};
  for (const [code, entry] of Object.entries(min.countries)) {
    const chosen = [...(TYPED_COUNTRIES.includes(code) ? max.countries[code] : entry)];
    chosen[FORMATS] = [];
    countries[code] = chosen;
  }
  return { ...min, countries, typedCountries: TYPED_COUNTRIES };
}

const target = new URL("./phone-metadata.json", import.meta.url);
if (process.argv[1] && new URL(`file://${process.argv[1]}`).href === import.meta.url) {
  writeFileSync(target, `${JSON.stringify(buildMetadata())}\n`);
  console.log(`worker/domain/phone-metadata.json: ${readFileSync(target).length} B`);
}
