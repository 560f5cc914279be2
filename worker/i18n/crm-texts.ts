import type { Language } from "./index";

/** What the worker writes into Bitrix24 (titles, comments, timeline entries, to-dos), per CRM_LANGUAGE. */
export interface CrmTexts {
  kindTitle: { call: string; chat: string; form: string };
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
  unverified: (entity: "lead" | "deal", given: string) => string;
  visitorIdValue: (id: string) => string;
  phoneValue: (phone: string) => string;
  nameValue: (name: string) => string;
  emailValue: (email: string) => string;
  clickToCall: (who: string, at: string, phone: string, sessionId: string) => string;
}

const en: CrmTexts = {
  kindTitle: { call: "CoMagic call", chat: "CoMagic chat", form: "Website form" },
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
  unverified: (entity, given) => `Unverified website form data, not added to the ${entity}: the form also gave ${given}.`,
  visitorIdValue: (id) => `CoMagic visitor ID ${id}`,
  phoneValue: (phone) => `phone ${phone}`,
  nameValue: (name) => `name ${name}`,
  emailValue: (email) => `email ${email}`,
  clickToCall: (who, at, phone, sessionId) => `Click-to-call through CoMagic by ${who} at ${at}: calling ${phone} (CoMagic call session ${sessionId}).`,
};

const ru: CrmTexts = {
  kindTitle: { call: "Звонок CoMagic", chat: "Чат CoMagic", form: "Заявка с сайта" },
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
  unverified: (entity, given) => `Непроверенные данные заявки с сайта, не добавлены в ${entity === "lead" ? "лид" : "сделку"}: в заявке также указано ${given}.`,
  visitorIdValue: (id) => `ID посетителя CoMagic ${id}`,
  phoneValue: (phone) => `телефон ${phone}`,
  nameValue: (name) => `имя ${name}`,
  emailValue: (email) => `email ${email}`,
  clickToCall: (who, at, phone, sessionId) => `Звонок из карточки через CoMagic: ${who}, ${at}, звоним на ${phone} (сессия звонка CoMagic ${sessionId}).`,
};

export function crmTexts(language: Language | undefined): CrmTexts {
  return language === "ru" ? ru : en;
}
