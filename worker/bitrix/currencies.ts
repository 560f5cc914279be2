/**
 * Reads the portal's currency rates (crm.currency.list, FACTS-portals §11) so a deal's OPPORTUNITY, kept in its own
 * CURRENCY_ID (§2), can be converted for CoMagic, whose revenue has no currency (FACTS-loop §1.7). Bitrix24 prices
 * AMOUNT_CNT units at AMOUNT of the base currency (KZT: 100 tenge for "18.0000"), so one unit is AMOUNT / AMOUNT_CNT.
 * A rate that does not parse is left out rather than guessed: the deal sync then flags the deal as not convertible.
 */
import * as z from "zod";
import type { CurrencyRates } from "../domain/deal-history";
import type { BitrixClient } from "./client";
import { BitrixError } from "./errors";

/** Every field of a row is a string (FACTS-portals §11); a number is read too. */
const text = z.union([z.string(), z.number().transform(String)]);
const currencyList = z.array(z.object({ CURRENCY: z.string().min(1), AMOUNT_CNT: text.nullish(), AMOUNT: text.nullish(), BASE: z.string().nullish() }).loose());
const baseCurrency = z.string().min(1);

/** A positive finite number from Bitrix24's decimal text ("68.7900"), else null. */
function positive(value: string | null | undefined): number | null {
  if (value === null || value === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return null;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : null;
}

/** The base currency and, per currency code, what one unit of it is worth in the base currency. */
export async function readCurrencyRates(bitrix: BitrixClient): Promise<{ base: string; rates: CurrencyRates }> {
  const answer = currencyList.safeParse(await bitrix.call("crm.currency.list", {}));
  if (!answer.success) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", "Bitrix24 crm.currency.list: unexpected answer", true, "no");
  const rates: CurrencyRates = {};
  for (const row of answer.data) {
    const amount = positive(row.AMOUNT);
    const count = positive(row.AMOUNT_CNT ?? "1");
    if (amount !== null && count !== null) rates[row.CURRENCY] = amount / count;
  }
  let base = answer.data.find((row) => row.BASE === "Y")?.CURRENCY;
  if (!base) {
    // Every portal has one base currency; should no row say so, ask for it by name (crm.currency.base.get, §11).
    const named = baseCurrency.safeParse(await bitrix.call("crm.currency.base.get", {}));
    if (!named.success) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", "Bitrix24 crm.currency.base.get: unexpected answer", true, "no");
    base = named.data;
  }
  // The base is worth one of itself, whatever its row says (or if it had none).
  rates[base] = 1;
  return { base, rates };
}
