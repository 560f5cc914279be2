import { en, type Messages } from "./en";
import { ru } from "./ru";

export type Language = "ru" | "en";
export type { Messages };

/** The portal user's language from Bitrix24's `LANG` (FACTS-portals §10): English for `en`, Russian for everything else. */
export function languageOf(lang: string | undefined | null): Language {
  return (lang ?? "").toLowerCase().startsWith("en") ? "en" : "ru";
}

export function messagesFor(language: Language): Messages {
  return language === "en" ? en : ru;
}

/** The locale dates and numbers are written in. */
export const LOCALES: Record<Language, string> = { ru: "ru-RU", en: "en-GB" };
