import type { Language } from "./index";

/** Chat channels by get.chats_report `chat_channel_type`: brand names read the same in both languages. */
const BRANDS: Readonly<Record<string, string>> = {
  whatsapp: "WhatsApp",
  waba: "WhatsApp",
  telegram: "Telegram",
  telegram_private: "Telegram",
  viber: "Viber",
  vkontakte_groups: "VK",
  avito: "Avito",
  auto_ru: "Auto.ru",
  cian: "CIAN",
  facebook: "Facebook",
  instagram: "Instagram",
  max: "MAX",
  max_bot: "MAX",
  tamtam_bot: "TamTam",
  sms: "SMS",
  sms_mass_messaging_uae: "SMS",
  sms_mass_messaging_international: "SMS",
  dataapi: "Data API",
};

/** Who wrote a line of a chat (domain/comagic-chat.ts ChatLine `from`). */
type Speaker = "client" | "employee" | "bot" | "system";

/** What the worker writes into Bitrix24 (titles, comments, timeline entries, to-dos), per CRM_LANGUAGE. */
export interface CrmTexts {
  kindTitle: { call: string; chat: string; form: string; request: string };
  /** A chat channel's name for titles and comments; unknown types are shown as CoMagic names them. */
  channels: Readonly<Record<string, string>>;
  channel: string;
  missedChat: string;
  messages: string;
  messagesNotRead: string;
  noMessages: string;
  speaker: Record<Speaker, string>;
  file: string;
  moreMessages: (n: number, chatId: string) => string;
  requestId: string;
  form: string;
  formType: string;
  requestText: string;
  requestComment: string;
  seconds: (n: number) => string;
  sessionId: (kind: string) => string;
  operator: string;
  duration: string;
  talk: string;
  wait: string;
  lostCall: string;
  trafficType: string;
  entryPage: string;
  tags: string;
  recording: string;
  visitorId: string;
  sessionIdOfVisit: string;
  utm: string;
  utmLast: string;
  utmFirst: string;
  clickIds: string;
  otherFields: string;
  message: string;
  page: string;
  referrer: string;
  websiteForm: string;
  callBack: (phone: string | null) => string;
  missedCall: (sessionId: string, waitSeconds: number) => string;
  /** `source`: what gave the data (a website form, a chat, a CoMagic request). */
  unverified: (entity: "lead" | "deal", given: string, source?: "form" | "chat" | "request") => string;
  visitorIdValue: (id: string) => string;
  phoneValue: (phone: string) => string;
  nameValue: (name: string) => string;
  emailValue: (email: string) => string;
  clickToCall: (who: string, at: string, phone: string, sessionId: string) => string;
}

const en: CrmTexts = {
  kindTitle: { call: "CoMagic call", chat: "CoMagic chat", form: "Website form", request: "CoMagic request" },
  channels: { ...BRANDS, comagic: "website", email: "email", offline_message: "request form", "yandex.dialogs": "Yandex Dialogs", realty_yandex: "Yandex Realty" },
  channel: "Channel",
  missedChat: "Missed chat: nobody answered",
  messages: "Messages",
  messagesNotRead: "Messages: not read from CoMagic",
  noMessages: "Messages: none",
  speaker: { client: "Client", employee: "Operator", bot: "Bot", system: "Auto-message" },
  file: "file",
  moreMessages: (n, chatId) => `… ${n} more ${n === 1 ? "message" : "messages"} in CoMagic (chat ${chatId})`,
  requestId: "CoMagic request ID",
  form: "Form",
  formType: "Form type",
  requestText: "Text",
  requestComment: "Comment",
  seconds: (n) => `${n} sec.`,
  sessionId: (kind) => `${kind} session ID`,
  operator: "Operator",
  duration: "Duration",
  talk: "talk",
  wait: "wait",
  lostCall: "Lost call: yes",
  trafficType: "Traffic type",
  entryPage: "Entry page",
  tags: "Tags",
  recording: "Recording",
  visitorId: "CoMagic visitor ID",
  sessionIdOfVisit: "CoMagic session ID",
  utm: "UTM",
  utmLast: "UTM (last touch)",
  utmFirst: "UTM (first touch)",
  clickIds: "Click ids",
  otherFields: "Other fields:",
  message: "Message",
  page: "Page",
  referrer: "Referrer",
  websiteForm: "Website form",
  callBack: (phone) => `Call back ${phone ?? "the client"}`,
  missedCall: (sessionId, wait) => `Missed call (CoMagic session ${sessionId}): nobody answered; the client waited ${wait} s.`,
  unverified: (entity, given, source = "form") =>
    source === "chat"
      ? `Unverified chat data, not added to the ${entity}: the chat also gave ${given}.`
      : source === "request"
        ? `Unverified CoMagic request data, not added to the ${entity}: the request also gave ${given}.`
        : `Unverified website form data, not added to the ${entity}: the form also gave ${given}.`,
  visitorIdValue: (id) => `CoMagic visitor ID ${id}`,
  phoneValue: (phone) => `phone ${phone}`,
  nameValue: (name) => `name ${name}`,
  emailValue: (email) => `email ${email}`,
  clickToCall: (who, at, phone, sessionId) => `Click-to-call through CoMagic by ${who} at ${at}: calling ${phone} (CoMagic call session ${sessionId}).`,
};

const ru: CrmTexts = {
  kindTitle: { call: "Звонок CoMagic", chat: "Чат CoMagic", form: "Заявка с сайта", request: "Заявка CoMagic" },
  channels: { ...BRANDS, comagic: "сайт", email: "эл. почта", offline_message: "форма заявки", "yandex.dialogs": "Яндекс Диалоги", realty_yandex: "Яндекс Недвижимость", cian: "ЦИАН" },
  channel: "Канал",
  missedChat: "Пропущенный чат: никто не ответил",
  messages: "Сообщения",
  messagesNotRead: "Сообщения: не прочитаны из CoMagic",
  noMessages: "Сообщения: нет",
  speaker: { client: "Клиент", employee: "Сотрудник", bot: "Бот", system: "Автосообщение" },
  file: "файл",
  moreMessages: (n, chatId) => `… ещё сообщений в CoMagic: ${n} (чат ${chatId})`,
  requestId: "ID заявки CoMagic",
  form: "Форма",
  formType: "Тип формы",
  requestText: "Текст",
  requestComment: "Комментарий",
  seconds: (n) => `${n} сек.`,
  sessionId: (kind) => `${kind}: ID сессии`,
  operator: "Сотрудник",
  duration: "Длительность",
  talk: "разговор",
  wait: "ожидание",
  lostCall: "Потерянный звонок: да",
  trafficType: "Тип трафика",
  entryPage: "Страница входа",
  tags: "Теги",
  recording: "Запись",
  visitorId: "ID посетителя CoMagic",
  sessionIdOfVisit: "ID сессии CoMagic",
  utm: "UTM",
  utmLast: "UTM (последнее касание)",
  utmFirst: "UTM (первое касание)",
  clickIds: "Идентификаторы кликов",
  otherFields: "Другие поля:",
  message: "Сообщение",
  page: "Страница",
  referrer: "Источник перехода",
  websiteForm: "Заявка с сайта",
  callBack: (phone) => `Перезвонить ${phone ?? "клиенту"}`,
  missedCall: (sessionId, wait) => `Пропущенный звонок (сессия CoMagic ${sessionId}): никто не ответил; клиент ждал ${wait} с.`,
  unverified: (entity, given, source = "form") =>
    source === "chat"
      ? `Непроверенные данные чата, не добавлены в ${entity === "lead" ? "лид" : "сделку"}: в чате также указано ${given}.`
      : source === "request"
        ? `Непроверенные данные заявки CoMagic, не добавлены в ${entity === "lead" ? "лид" : "сделку"}: в заявке также указано ${given}.`
        : `Непроверенные данные заявки с сайта, не добавлены в ${entity === "lead" ? "лид" : "сделку"}: в заявке также указано ${given}.`,
  visitorIdValue: (id) => `ID посетителя CoMagic ${id}`,
  phoneValue: (phone) => `телефон ${phone}`,
  nameValue: (name) => `имя ${name}`,
  emailValue: (email) => `email ${email}`,
  clickToCall: (who, at, phone, sessionId) => `Звонок из карточки через CoMagic: ${who}, ${at}, звоним на ${phone} (сессия звонка CoMagic ${sessionId}).`,
};

export function crmTexts(language: Language | undefined): CrmTexts {
  return language === "ru" ? ru : en;
}
