/**
 * Bitrix24's own phone normalisation for the duplicate index and `crm.duplicate.findbycomm`
 * (DuplicateCommunicationCriterion::normalizePhone, ported in ../shared/reference/bitrix24/FACTS.md §7).
 * Matching is exact on the result, so `+7 912…` and `8 912…` match but `912…` does not.
 */
export function bitrixNormalizePhone(value: string): string {
  const original = String(value ?? "");
  if (original === "") return "";
  let r = original;
  if (r.length >= 10 && r.startsWith("+8")) r = `00${r.slice(1)}`;
  r = r.replace(/[^0-9#*,;]/g, "");
  if (r.length >= 10) {
    if (/^8[012]/.test(r)) {
      // kept: 80/81/82 are real prefixes, not the Russian trunk 8
    } else if (r.startsWith("00")) r = r.slice(2);
    else if (r.startsWith("011")) r = r.slice(3);
    else if (r.startsWith("8")) r = `7${r.slice(1)}`;
    else if (r.startsWith("0")) r = r.slice(1);
  }
  if (r === "") r = original.replace(/[^0-9#*,;]/g, "");
  return r.replace(/(\d+)([;#]*)([\d,]*)/g, "$1");
}
