import { parsePhoneNumberFromString as parse, type MetadataJson } from "libphonenumber-js/core";
import maxMetadata from "libphonenumber-js/metadata.max.json";
import minMetadata from "libphonenumber-js/metadata.min.json";
import examples from "libphonenumber-js/examples.mobile.json";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module of the build, without types
import { buildMetadata } from "../../worker/domain/phone-metadata.build.mjs";
import committed from "../../worker/domain/phone-metadata.json";

type Countries = { countries: Record<string, unknown[]> };
const ours = committed as unknown as MetadataJson;
/** The same choice of metadata per country, with the display formats kept. */
const typed = new Set((committed as { typedCountries: string[] }).typedCountries);
const withFormats = {
  ...minMetadata,
  countries: Object.fromEntries(Object.entries((minMetadata as unknown as Countries).countries).map(([c, entry]) => [c, typed.has(c) ? (maxMetadata as unknown as Countries).countries[c] : entry])),
} as unknown as MetadataJson;
const facts = (p: ReturnType<typeof parse>) => (p ? { number: p.number, valid: p.isValid(), country: p.country, national: p.nationalNumber, type: p.getType() } : null);

describe("the worker's phone metadata", () => {
  it("is what the build script makes of the installed libphonenumber-js (run it after an update)", () => {
    expect(JSON.parse(JSON.stringify(buildMetadata()))).toEqual(committed);
  });

  it("parses every country's example number, in every spelling, as it does with the display formats kept", () => {
    const differ: string[] = [];
    for (const [country, national] of Object.entries(examples as Record<string, string>)) {
      const code = (withFormats as unknown as Countries).countries[country]?.[0];
      for (const [text, region] of [
        [national, country],
        [`+${code}${national}`, undefined],
        [`00${code}${national}`, country],
        [`8${national}`, country],
      ] as const) {
        const options = { defaultCountry: region as never };
        if (JSON.stringify(facts(parse(text, options, ours))) !== JSON.stringify(facts(parse(text, options, withFormats)))) differ.push(`${country} ${text}`);
      }
    }
    expect(differ).toEqual([]);
  });
});
