import { phoneCountryAndType, TYPED_COUNTRIES } from "./phone";

/*
 * Toll-fraud rules for click-to-call. A number can reach a lead from an anonymous website form, and Call
 * dials it at the company's cost: only numbers in the countries the company sells to, and only ordinary
 * number types, are ever dialled. Satellite and other non-geographic numbers have no country, so they fail
 * the country rule; a number whose type the metadata cannot tell is refused too.
 */

/** Types a sales manager calls; premium-rate, shared-cost, UAN, personal, pager and voicemail numbers are not. */
const CALLABLE_TYPES = new Set(["MOBILE", "FIXED_LINE", "FIXED_LINE_OR_MOBILE", "TOLL_FREE", "VOIP"]);

/** Why a number may not be called, with the facts the refusal text (worker/i18n callRefusals) names. */
export type CallNumberRefusal =
  | { reason: "not_a_phone"; phone: string }
  | { reason: "country_not_allowed"; country: string | null; allowed: string[] }
  | { reason: "number_type_refused"; phone: string; type: string };

/** Every reason Call refuses after the tab token was checked; the route maps each to a status and a text. */
export type CallRefusal =
  | { code: "not_configured" }
  | { code: "no_phone"; entity: string }
  | { code: "number_not_allowed"; policy: CallNumberRefusal }
  | { code: "number_changed"; entity: string }
  | { code: "user_not_mapped" }
  | { code: "daily_limit"; whose: "user_limit" | "portal_limit" }
  | { code: "comagic_refused"; mnemonic: string };

export function checkCallNumber(e164: string, allowedCountries: ReadonlySet<string>): CallNumberRefusal | null {
  const facts = phoneCountryAndType(e164);
  if (!facts) return { reason: "not_a_phone", phone: e164 };
  if (!facts.country || !allowedCountries.has(facts.country)) return { reason: "country_not_allowed", country: facts.country ?? null, allowed: [...allowedCountries] };
  if (!facts.type || !CALLABLE_TYPES.has(facts.type)) {
    return { reason: "number_type_refused", phone: e164, type: facts.type ? facts.type.toLowerCase().replace(/_/g, "-") : "unknown" };
  }
  return null;
}

/** Countries in CALL_COUNTRIES whose number types the bundled metadata cannot tell: every call there is refused. */
export function untypedCallCountries(countries: Iterable<string>): string[] {
  return [...countries].filter((c) => !TYPED_COUNTRIES.has(c));
}
