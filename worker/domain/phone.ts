import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/min";

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
