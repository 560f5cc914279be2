import { phoneCountryAndType, TYPED_COUNTRIES } from "./phone";

/*
 * Toll-fraud rules for click-to-call. A number can reach a lead from an anonymous website form, and Call
 * dials it at the company's cost: only numbers in the countries the company sells to, and only ordinary
 * number types, are ever dialled. Satellite and other non-geographic numbers have no country, so they fail
 * the country rule; a number whose type the metadata cannot tell is refused too.
 */

/** Types a sales manager calls; premium-rate, shared-cost, UAN, personal, pager and voicemail numbers are not. */
const CALLABLE_TYPES = new Set(["MOBILE", "FIXED_LINE", "FIXED_LINE_OR_MOBILE", "TOLL_FREE", "VOIP"]);

export type CallNumberRefusal =
  | { reason: "not_a_phone"; message: string }
  | { reason: "country_not_allowed"; message: string }
  | { reason: "number_type_refused"; message: string };

export function checkCallNumber(e164: string, allowedCountries: ReadonlySet<string>): CallNumberRefusal | null {
  const facts = phoneCountryAndType(e164);
  if (!facts) return { reason: "not_a_phone", message: `${e164} is not a valid phone number.` };
  if (!facts.country || !allowedCountries.has(facts.country)) {
    return { reason: "country_not_allowed", message: `Calls to ${facts.country ?? "this number's region"} are not allowed here (CALL_COUNTRIES: ${[...allowedCountries].join(", ")}).` };
  }
  if (!facts.type || !CALLABLE_TYPES.has(facts.type)) {
    const what = facts.type ? facts.type.toLowerCase().replace(/_/g, "-") : "unknown";
    return { reason: "number_type_refused", message: `${e164} is a ${what} number; click-to-call dials only mobile and landline numbers.` };
  }
  return null;
}

/** Countries in CALL_COUNTRIES whose number types the bundled metadata cannot tell: every call there is refused. */
export function untypedCallCountries(countries: Iterable<string>): string[] {
  return [...countries].filter((c) => !TYPED_COUNTRIES.has(c));
}
