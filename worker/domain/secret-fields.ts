/*
 * Which form fields carry secrets (passwords, cards, one-time codes, keys, tokens): the one rule the snippet
 * (bundled into it by snippet/build.mjs) and the worker both apply, so a lead's comment never holds one.
 * It errs towards dropping: a field it wrongly takes for a secret costs a line of the comment, a secret
 * it misses costs the visitor. No imports: the snippet's bundle must stay within its kilobyte.
 */

/**
 * Tested against a field's name in the worker, and in the snippet against "type,autocomplete,name" (so
 * `type=password` and `autocomplete="cc-number"`/`"one-time-code"` count). Anywhere in the name: pass, pwd,
 * card (creditcard), token, secret, cc-/cc_/ccn (cc_number, ccnum), one-t(ime), cvv/cvc, iban, csrf, otp,
 * secur(ity_code), verif(ication_code), sms_c(ode); at its end: key (api_key, apiKey; not keyword); at the
 * start of a word or after `_`: pin (not shipping, opinion). Every byte counts against the snippet's budget.
 */
export const SECRET_FIELD_NAME = /pass|pwd|card|token|secret|key\b|cc[-_n]|one-t|cv[vc]|iban|csrf|otp|secur|verif|sms_?c|(\b|_)pin/i;

/** The fields without those whose names say they carry a secret. */
export function withoutSecretFields<T>(fields: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(fields).filter(([name]) => !SECRET_FIELD_NAME.test(name)));
}
