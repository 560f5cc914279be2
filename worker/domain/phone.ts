import { getCountries as countriesIn, parsePhoneNumberFromString as parseWith, type CountryCode, type MetadataJson, type NumberType } from "libphonenumber-js/core";
import metadataJson from "./phone-metadata.json";

/*
 * libphonenumber-js with metadata of our own (phone-metadata.build.mjs): the small metadata for every country,
 * and the full one, which tells mobile from premium-rate numbers, for the countries click-to-call may dial.
 */
const metadata = metadataJson as unknown as MetadataJson;

/** Countries whose number types are known, so calls there can be checked (the full metadata is bundled for them). */
export const TYPED_COUNTRIES: ReadonlySet<string> = new Set((metadataJson as { typedCountries: string[] }).typedCountries);

export function knownRegions(): string[] {
  return countriesIn(metadata);
}

const parsePhoneNumberFromString = (text: string, region?: CountryCode) => parseWith(text, { defaultCountry: region }, metadata);

/** The number's country and type (undefined where the metadata cannot tell), for a valid E.164 number. */
export function phoneCountryAndType(e164: string): { country: CountryCode | undefined; type: NumberType } | null {
  const parsed = parsePhoneNumberFromString(e164);
  if (!parsed?.isValid()) return null;
  return { country: parsed.country, type: parsed.getType() };
}

/** E.164 (`+79123456789`) for a valid number in any common spelling, else null. */
export function normalizePhone(raw: string, defaultRegion: CountryCode): string | null {
  const trimmed = raw.trim();
  if (trimmed === "") return null;
  const parsed = parsePhoneNumberFromString(trimmed, defaultRegion);
  return parsed?.isValid() ? parsed.number : null;
}

/**
 * Spellings of one number to hand to `crm.duplicate.findbycomm`, which compares its own normalisation
 * of stored values exactly: leads typed in by hand as `8912…` or `912…` must still be found.
 */
export function phoneSearchVariants(e164: string): string[] {
  const parsed = parsePhoneNumberFromString(e164);
  if (!parsed) return [e164];
  const national = parsed.nationalNumber;
  const variants = [e164, e164.slice(1), national];
  // Russia and Kazakhstan dial the trunk prefix 8 in place of the country code 7.
  if (parsed.countryCallingCode === "7") variants.push(`8${national}`);
  return [...new Set(variants)];
}

/** `+79123456789` → `+7912*****89`: enough to tell numbers apart in logs, not enough to call one. */
export function maskPhone(phone: string): string {
  if (phone.length <= 6) return "*".repeat(phone.length);
  return `${phone.slice(0, 5)}${"*".repeat(phone.length - 7)}${phone.slice(-2)}`;
}
