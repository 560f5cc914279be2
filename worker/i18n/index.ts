import { AppError } from "../errors";
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

export type PageErrorCode = keyof Messages["pageErrors"];

/**
 * An error an app page shows: its English text (for logs and JSON) comes from the catalogue, and htmlError
 * shows the user's language by the same code.
 */
export function pageError(status: ConstructorParameters<typeof AppError>[0], code: PageErrorCode): AppError {
  return new AppError(status, code, messagesFor("en").pageErrors[code]);
}

/** The page-error text in a language, or null for a code the catalogue does not name. */
export function pageErrorText(messages: Messages, code: string): string | null {
  return code in messages.pageErrors ? messages.pageErrors[code as PageErrorCode] : null;
}

/** The locale dates and numbers are written in. */
export const LOCALES: Record<Language, string> = { ru: "ru-RU", en: "en-GB" };
