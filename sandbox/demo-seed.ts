/**
 * The demo portal (`npm start -- --demo`): a sofa shop's last 90 days in CoMagic and Bitrix24, made up by a seeded
 * random generator (the same shop on every run, so screenshots stay put) and fed through the worker the way real
 * data comes, never into its D1 directly:
 *   - CoMagic's reports get the history (visits with UTMs, calls, chats with their messages, requests, ad cost per
 *     campaign and day), and the worker's reconciliation (`POST /admin/reconcile`, a week at a time) reads it, as when
 *     an agency connects a client with a past: leads dated by CoMagic's own times, then the worker's enrichment;
 *   - today's calls come as signed notifications (`/webhooks/comagic`), today's website forms from the snippet
 *     (`/forms`), since neither can be dated back: Bitrix24's DATE_CREATE is read-only (bitrix24/FACTS-portals.md §2);
 *   - the sales team converts part of the leads into deals (the sandbox's conversion, as in Bitrix24's UI: LEAD_ID is
 *     read-only to REST) and closes them through REST, won or lost, in roubles or dollars;
 *   - the report's own refresh then reads the deals and CoMagic's ad cost.
 * One manager has left but is still mapped to his CoMagic employee (`departed`): the call he answered cannot be put
 * in Bitrix24's telephony, and waits as a dead letter that says why.
 * It runs in Node (sandbox/dev.ts) and in workerd (test/worker/demo.test.ts): fetch and Web Crypto only.
 */
import { formatComagicDateTime, parseComagicDateTime } from "../worker/domain/comagic-time";
import { callsReportRow, SANDBOX_ACCOUNT_TIME_ZONE } from "./comagic/calls-report-row";

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
/** The worker reads journeys 89 days back (worker/domain/report-window.ts): every visit stays inside that. */
const HISTORY_DAYS = 87;
/** The reconciliation reads at most 7 days a request (worker/routes/admin.ts). */
const RECONCILE_STEP_MS = 7 * DAY_MS;
/** Today's calls (notifications) and forms come within this last stretch; the history ends before it. */
const LIVE_MS = 90 * MINUTE_MS;
export const DEMO_SITE = { id: 4242, domain: "shop.example.ru" };
/**
 * Contacts in the shop's 90 days: about as many leads as the worker writes in under a minute here, where the portal's
 * 2 Bitrix24 requests a second (the worker's own budget: worker/domain/request-budget.ts) are what takes the time.
 */
export const DEMO_CONTACTS = 220;
/** The manager who left: Bitrix24 user 4 (dismissed in the sandbox), once CoMagic employee 27. */
export const DEMO_DEPARTED = { userId: 4, employeeId: 27 };

type CoMagicChannel = "paid" | "organic" | "social" | "email" | "referral" | "direct";
interface Source {
  channel: CoMagicChannel;
  sourceName: string;
  utm: { source: string; medium: string; campaign: string } | null;
  referrer: string | null;
  campaign: { id: number; name: string };
  /** Roubles a day, for the paid campaigns (get.campaign_daily_stat). */
  dailyCost?: [number, number];
  /** How often a journey starts here, and how often a later visit comes from here. */
  first: number;
  later: number;
}

/** The shop's traffic: CoMagic's channels (comagic/FACTS.md §2.3 `channel`), each with a CoMagic campaign. */
const SOURCES: Source[] = [
  {
    channel: "paid",
    sourceName: "Яндекс.Директ",
    utm: { source: "yandex", medium: "cpc", campaign: "sofas_search" },
    referrer: "https://yandex.ru/",
    campaign: { id: 3101, name: "Яндекс.Директ: диваны, поиск" },
    dailyCost: [2600, 4200],
    first: 22,
    later: 12,
  },
  {
    channel: "paid",
    sourceName: "Яндекс.Директ",
    utm: { source: "yandex", medium: "cpc", campaign: "armchairs_rsya" },
    referrer: "https://yandex.ru/",
    campaign: { id: 3102, name: "Яндекс.Директ: кресла, РСЯ" },
    dailyCost: [900, 1700],
    first: 8,
    later: 5,
  },
  {
    channel: "paid",
    sourceName: "Google Ads",
    utm: { source: "google", medium: "cpc", campaign: "sofas_google" },
    referrer: "https://www.google.com/",
    campaign: { id: 3103, name: "Google Ads: диваны" },
    dailyCost: [1300, 2300],
    first: 14,
    later: 6,
  },
  { channel: "organic", sourceName: "Яндекс", utm: null, referrer: "https://yandex.ru/", campaign: { id: 3201, name: "Органический поиск" }, first: 12, later: 9 },
  { channel: "organic", sourceName: "Google", utm: null, referrer: "https://www.google.com/", campaign: { id: 3201, name: "Органический поиск" }, first: 8, later: 6 },
  {
    channel: "social",
    sourceName: "ВКонтакте",
    utm: { source: "vk", medium: "social", campaign: "sofa_of_the_week" },
    referrer: "https://vk.com/",
    campaign: { id: 3202, name: "Соцсети" },
    first: 10,
    later: 7,
  },
  {
    channel: "email",
    sourceName: "Email-рассылка",
    utm: { source: "newsletter", medium: "email", campaign: "autumn_sale" },
    referrer: null,
    campaign: { id: 3203, name: "Email-рассылка" },
    first: 5,
    later: 12,
  },
  { channel: "referral", sourceName: "mebel-review.ru", utm: null, referrer: "https://mebel-review.ru/top-10-sofas", campaign: { id: 3204, name: "Переходы с сайтов" }, first: 6, later: 3 },
  { channel: "direct", sourceName: "Прямые заходы", utm: null, referrer: null, campaign: { id: 3205, name: "Прямые заходы" }, first: 15, later: 40 },
];
const PAGES = ["/", "/sofas", "/sofas/corner", "/armchairs", "/sale", "/delivery", "/sofas/velvet-green"];
const FIRST_NAMES = { female: ["Анна", "Мария", "Ольга", "Елена", "Наталья", "Татьяна", "Юлия", "Ксения"], male: ["Иван", "Сергей", "Дмитрий", "Алексей", "Павел", "Андрей", "Михаил"] };
const LAST_NAMES = ["Смирнов", "Иванов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов", "Новиков", "Морозов", "Волков"];
const PRODUCTS = ["Угловой диван «Осло»", "Диван «Берген», велюр", "Кресло «Лунд»", "Диван-кровать «Тромсё»", "Модульный диван «Одда»", "Пуф и кресло «Мольде»"];
const REQUEST_FORMS = [
  { name: "Заказать звонок", type: "Стандартная", text: "Перезвоните, пожалуйста" },
  { name: "Рассчитать стоимость", type: "Пользовательская", text: "Сколько будет стоить угловой диван 280 см с доставкой?" },
  { name: "Оптовый запрос", type: "Пользовательская", text: "We furnish hotels in Almaty: a quote for 40 armchairs, please (USD)" },
];
const CHAT_LINES = ["Здравствуйте! Есть ли этот диван в зелёном цвете?", "Сколько идёт доставка в Подмосковье?", "Можно ли посмотреть ткань вживую?", "Хочу заказать кресло, подскажите размеры"];
/** The shop's CoMagic employees (sandbox/comagic/call-api.ts): Ivan 25, Maria 26. */
const EMPLOYEES = [
  { id: 25, name: "Ivan Admin" },
  { id: 26, name: "Maria Sales" },
];

/** mulberry32: a small seeded generator, so the same seed makes the same shop. */
function randomFrom(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const between = (min: number, max: number) => min + next() * (max - min);
  const int = (min: number, max: number) => Math.floor(between(min, max + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const weighted = <T>(items: readonly T[], weight: (item: T) => number): T => {
    let left = next() * items.reduce((sum, item) => sum + weight(item), 0);
    for (const item of items) {
      left -= weight(item);
      if (left < 0) return item;
    }
    return items[items.length - 1] as T;
  };
  return { next, between, int, pick, weighted };
}

type Row = Record<string, unknown>;
type Kind = "call" | "chat" | "request" | "form";

interface Person {
  visitorId: number;
  phone: string;
  email: string | null;
  name: string;
  wholesale: boolean;
  visits: { id: number; at: Date; source: Source; page: string }[];
}

/** One contact the shop got, and how the worker hears of it. */
export interface DemoContact {
  kind: Kind;
  /** feed: read from CoMagic's reports; webhook: a notification now; form: the snippet now. */
  via: "feed" | "webhook" | "form";
  at: Date;
  person: Person;
  /** Whether it is the person's first contact (a new lead); later ones land on that lead. */
  first: boolean;
  lost: boolean;
}

export interface DemoDeal {
  person: Person;
  title: string;
  stage: "WON" | "LOSE" | "EXECUTING";
  amount: number;
  currency: "RUB" | "USD";
  createdAt: Date;
}

export interface DemoPlan {
  now: Date;
  contacts: DemoContact[];
  deals: DemoDeal[];
  /** Rows for POST /_sandbox/comagic/data. */
  comagic: Record<string, Row[]>;
  /** Today's calls as notification values (the shipped template's variables), each with its calls-report row seeded. */
  notifications: Record<string, unknown>[];
  forms: Record<string, string>[];
  /** Where the history ends and today's notifications and forms begin. */
  liveFrom: Date;
}

export interface DemoOptions {
  now: Date;
  /** About how many contacts (calls, chats, requests, forms) the shop had in 90 days. */
  contacts?: number;
  seed?: number;
  /** The site the snippet's forms come from (the demo site under `npm start`). */
  siteOrigin?: string;
  /** Where recordings are served: the sandbox's media host (the sandbox has no internet). */
  mediaBase?: string;
  /** The CoMagic employee of a manager who has left (one of today's calls is his). */
  departedEmployeeId?: number;
}

/** The history's contacts by kind: calls most, then CoMagic's requests (its own site forms) and chats. */
const KIND_WEIGHTS = { call: 52, chat: 20, request: 28 };
/** Messengers bring the phone; a site chat only what the visitor typed into its form (get.visitors). */
const CHAT_CHANNELS = [
  { type: "comagic", name: "Чат на сайте", weight: 50 },
  { type: "whatsapp", name: "WhatsApp", weight: 30 },
  { type: "telegram", name: "Telegram", weight: 20 },
];

const cm = (date: Date) => formatComagicDateTime(date, SANDBOX_ACCOUNT_TIME_ZONE);
const day = (date: Date) => cm(date).slice(0, 10);

/** The shop's 90 days: who visited from where, who called, chatted, asked or filled a form, and who bought. */
export function buildDemo(options: DemoOptions): DemoPlan {
  const random = randomFrom(options.seed ?? 24);
  const now = options.now;
  const total = options.contacts ?? DEMO_CONTACTS;
  const liveFrom = new Date(now.getTime() - LIVE_MS);
  const ids = { visitor: 61_000_000, visit: 700_000_000, call: 4_200_000_000, chat: 880_000, request: 990_000, communication: 5_000_000, message: 7_700_000 };
  const phones = new Set<string>();
  const people: Person[] = [];

  /** A person whose journey ends just before `at`: one to five visits over up to three weeks, inside the history. */
  const newPerson = (at: Date): Person => {
    let phone = "";
    do phone = `79${random.int(10, 99)}${random.int(1_000_000, 9_999_999)}`;
    while (phones.has(phone));
    phones.add(phone);
    const female = random.next() < 0.55;
    const first = random.pick(female ? FIRST_NAMES.female : FIRST_NAMES.male);
    const last = random.pick(LAST_NAMES);
    const visitCount = random.weighted([1, 2, 3, 4, 5], (n) => [30, 30, 20, 12, 8][n - 1] ?? 1);
    const earliest = Math.max(now.getTime() - HISTORY_DAYS * DAY_MS, at.getTime() - random.between(1, 21) * DAY_MS);
    const times = Array.from({ length: visitCount - 1 }, () => random.between(earliest, at.getTime() - 2 * 3_600_000))
      .filter((t) => t >= earliest)
      .sort((a, b) => a - b);
    times.push(at.getTime() - random.between(2, 40) * MINUTE_MS);
    const visits = times.map((t, i) => ({ id: ++ids.visit, at: new Date(t), source: random.weighted(SOURCES, (s) => (i === 0 ? s.first : s.later)), page: random.pick(PAGES) }));
    const person: Person = {
      visitorId: ++ids.visitor,
      phone,
      email: random.next() < 0.5 ? `${["anna", "ivan", "client", "home", "sofa"][people.length % 5]}.${people.length + 1}@mail.example.ru` : null,
      name: `${first} ${female ? `${last}а` : last}`,
      wholesale: false,
      visits,
    };
    people.push(person);
    return person;
  };

  // When contacts happen: on a day of the history up to yesterday (60% evenly, 40% more and more toward yesterday: a
  // shop that grows), in Moscow business hours; today's come live. The draws never depend on `now`: every run makes
  // the same shop, only its dates move.
  const atRandom = () => {
    const back = random.next() < 0.6 ? random.next() : 1 - Math.sqrt(random.next());
    const daysBack = 1 + Math.floor(back * (HISTORY_DAYS - 2));
    const midnight = parseComagicDateTime(`${day(new Date(now.getTime() - daysBack * DAY_MS))} 00:00:00`, SANDBOX_ACCOUNT_TIME_ZONE) ?? now;
    return new Date(midnight.getTime() + (9 + random.next() * 12) * 3_600_000);
  };

  const contacts: DemoContact[] = [];
  const forms = Math.max(1, Math.round(total * 0.05));
  const live = Math.max(1, Math.round(total * 0.02));
  for (let i = 0; i < total - forms - live; i++) {
    const at = atRandom();
    const kind = random.weighted(["call", "chat", "request"] as const, (k) => KIND_WEIGHTS[k]);
    // Now and then a client gets in touch again a day or three later: the worker adds it to the same lead.
    const earlier = contacts.filter((c) => c.first && c.via === "feed" && c.at < at && at.getTime() - c.at.getTime() < 3 * DAY_MS);
    if (earlier.length && random.next() < 0.04) {
      const again = random.pick(earlier);
      contacts.push({ kind, via: "feed", at, person: again.person, first: false, lost: false });
      continue;
    }
    contacts.push({ kind, via: "feed", at, person: newPerson(at), first: true, lost: kind === "call" && random.next() < 0.1 });
  }
  for (let i = 0; i < live; i++) {
    const at = new Date(liveFrom.getTime() + ((i + 0.5) / live) * (LIVE_MS - 10 * MINUTE_MS));
    contacts.push({ kind: "call", via: "webhook", at, person: newPerson(at), first: true, lost: i === 1 });
  }
  for (let i = 0; i < forms; i++) {
    const at = new Date(liveFrom.getTime() + ((i + 0.5) / forms) * (LIVE_MS - 5 * MINUTE_MS));
    contacts.push({ kind: "form", via: "form", at, person: newPerson(at), first: true, lost: false });
  }
  contacts.sort((a, b) => a.at.getTime() - b.at.getTime());

  const comagic: Record<string, Row[]> = { visitor_sessions: [], communications: [], calls: [], chats: [], chat_messages: [], offline_messages: [], visitors: [], campaign_daily_stat: [] };
  const push = (key: string, row: Row) => comagic[key]?.push(row);
  for (const person of people) {
    for (const visit of person.visits) {
      const { source } = visit;
      push("visitor_sessions", {
        id: visit.id,
        date_time: cm(visit.at),
        visitor_id: person.visitorId,
        person_id: person.visitorId + 1_000_000,
        channel: source.channel,
        source_name: source.sourceName,
        referrer: source.referrer,
        referrer_domain: source.referrer ? new URL(source.referrer).host : null,
        entrance_page: `https://${DEMO_SITE.domain}${visit.page}`,
        site_id: DEMO_SITE.id,
        site_domain_name: DEMO_SITE.domain,
        campaign_id: source.campaign.id,
        campaign_name: source.campaign.name,
        visitor_device: random.next() < 0.6 ? "mobile" : "desktop",
        utm_source: source.utm?.source ?? null,
        utm_medium: source.utm?.medium ?? null,
        utm_campaign: source.utm?.campaign ?? null,
        utm_content: null,
        utm_term: source.utm?.medium === "cpc" ? random.pick(["купить диван", "диван угловой", "кресло мягкое", "диван недорого"]) : null,
      });
    }
    push("visitors", { id: person.visitorId, name: person.name, phones: [person.phone], emails: person.email ? [person.email] : [], usernames: [] });
  }

  const notifications: Record<string, unknown>[] = [];
  const formFields: Record<string, string>[] = [];
  for (const contact of contacts) {
    const { person, at } = contact;
    const visit = [...person.visits].reverse().find((v) => v.at <= at) ?? person.visits[0];
    const source = visit?.source;
    const utm = { utm_source: source?.utm?.source ?? null, utm_medium: source?.utm?.medium ?? null, utm_campaign: source?.utm?.campaign ?? null };
    const communication = (type: string) =>
      push("communications", { id: ++ids.communication, communication_type: type, date_time: cm(at), visitor_id: person.visitorId, visitor_session_id: visit?.id ?? null });
    const shared = {
      site_id: DEMO_SITE.id,
      site_domain_name: DEMO_SITE.domain,
      campaign_id: source?.campaign.id ?? null,
      campaign_name: source?.campaign.name ?? null,
      channel: source?.channel ?? null,
      entrance_page: `https://${DEMO_SITE.domain}${visit?.page ?? "/"}`,
      ...utm,
    };
    if (contact.kind === "call") {
      const id = ++ids.call;
      const departed = contact.via === "webhook" && notifications.length === 0 && options.departedEmployeeId !== undefined;
      const employee = departed ? { id: options.departedEmployeeId ?? 0, name: "Pavel Burst" } : random.pick(EMPLOYEES);
      // A missed call the worker keeps waited at least MIN_LOST_CALL_SECONDS (10).
      const wait = contact.lost ? random.int(15, 60) : random.int(5, 40);
      const talk = contact.lost ? 0 : random.int(45, 540);
      communication("call");
      // Only today's calls carry a recording: each attach is a Bitrix24 request of its own (2 a second).
      // The departed manager's call has none: its telephony job would be sent again with it, a second dead letter.
      const recording = contact.via === "webhook" && !contact.lost && !departed && options.mediaBase ? `${options.mediaBase}/_sandbox/media/rec/${id}.mp3` : null;
      push(
        "calls",
        callsReportRow(
          { id, phone: person.phone, visitorId: person.visitorId, startedAt: at },
          {
            ...shared,
            is_lost: contact.lost,
            total_duration: wait + talk,
            talk_duration: talk,
            wait_duration: wait,
            source_name: source?.sourceName ?? null,
            tags: contact.lost ? [] : [{ tag_name: random.pick(["целевой", "новый клиент", "повторный"]) }],
            full_record_file_link: recording,
            last_answered_employee_id: contact.lost ? null : employee.id,
            last_answered_employee_full_name: contact.lost ? null : employee.name,
            utm_content: null,
            utm_term: null,
          },
        ),
      );
      if (contact.via === "webhook") {
        notifications.push({
          notification_name: contact.lost ? "Потерянный звонок" : "Завершение звонка",
          notification_time: cm(new Date(at.getTime() + (wait + talk) * 1000)),
          call_session_id: id,
          communication_number: 1,
          contact_phone_number: person.phone,
          virtual_phone_number: "74993720692",
          direction: "in",
          is_internal: false,
          call_source: "va",
          scenario_name: "Основной",
          employee_id: contact.lost ? null : employee.id,
          employee_full_name: contact.lost ? null : employee.name,
          talk_time_duration: talk,
          total_time_duration: wait + talk,
          wait_time_duration: wait,
          tag_names: contact.lost ? [] : ["целевой"],
        });
      }
    } else if (contact.kind === "chat") {
      const id = ++ids.chat;
      // A site chat needs an email the visitor typed in: people without one write from a messenger.
      const chatChannel = random.weighted(
        CHAT_CHANNELS.filter((c) => person.email || c.type !== "comagic"),
        (c) => c.weight,
      );
      const channelType = chatChannel.type;
      communication("chat");
      push("chats", {
        ...shared,
        id,
        date_time: cm(at),
        communication_id: ids.communication,
        communication_page_url: `https://${DEMO_SITE.domain}${visit?.page ?? "/"}`,
        status: random.next() < 0.9 ? "succeed" : "lost",
        initiator: "visitor",
        chat_channel_type: channelType,
        chat_channel_name: chatChannel.name,
        is_group_chat: false,
        employee_id: 26,
        employee_full_name: "Maria Sales",
        visitor_phone_number: channelType === "comagic" ? null : person.phone,
        visitor_id: person.visitorId,
        tags: [],
      });
      const line = random.pick(CHAT_LINES);
      push("chat_messages", { id: ++ids.message, chat_id: id, date_time: cm(at), text: line, source: channelType === "comagic" ? "visitor" : "chat_channel", employee_full_name: null });
      push("chat_messages", {
        id: ++ids.message,
        chat_id: id,
        date_time: cm(new Date(at.getTime() + 90_000)),
        text: "Здравствуйте! Да, конечно, сейчас подскажу.",
        source: "operator",
        employee_full_name: "Maria Sales",
      });
    } else if (contact.kind === "request") {
      const id = ++ids.request;
      const form = random.weighted(REQUEST_FORMS, (f) => (f.name === "Оптовый запрос" ? 10 : 45));
      if (form.name === "Оптовый запрос" && contact.first) person.wholesale = true;
      communication("offline_message");
      push("offline_messages", {
        ...shared,
        id,
        date_time: cm(at),
        communication_id: ids.communication,
        communication_page_url: `https://${DEMO_SITE.domain}${visit?.page ?? "/"}`,
        text: form.text,
        form_type: form.type,
        form_name: form.name,
        status: "processed",
        employee_id: 25,
        employee_full_name: "Ivan Admin",
        visitor_phone_number: person.phone,
        visitor_email: person.email,
        visitor_name: person.name,
        visitor_id: person.visitorId,
        tags: [],
      });
    } else {
      const first = person.visits[0]?.source;
      const fields: Record<string, string> = {
        name: person.name,
        phone: `+${person.phone}`,
        message: random.pick(["Хочу заказать замер", "Перезвоните по поводу дивана «Осло»", "Есть ли рассрочка?"]),
        form_name: random.pick(["Заказать замер", "Callback request"]),
        comagic_visitor_id: String(person.visitorId),
        comagic_session_id: String(visit?.id ?? ""),
        page_url: `${options.siteOrigin ?? `https://${DEMO_SITE.domain}`}${visit?.page ?? "/"}`,
        referrer: source?.referrer ?? "",
        submission_id: String(at.getTime()),
      };
      if (person.email) fields.email = person.email;
      for (const [key, value] of Object.entries(utm)) if (value) fields[key] = value;
      if (first?.utm) Object.assign(fields, { first_utm_source: first.utm.source, first_utm_medium: first.utm.medium, first_utm_campaign: first.utm.campaign });
      formFields.push(fields);
    }
  }

  // A few short missed calls: CoMagic counts them, the worker's targeted-call rule makes nothing of them.
  for (let i = 0; i < Math.round(total * 0.03); i++) {
    const at = atRandom();
    push(
      "calls",
      callsReportRow(
        { id: ++ids.call, phone: `7916${random.int(1_000_000, 9_999_999)}`, visitorId: null, startedAt: at },
        {
          is_lost: true,
          total_duration: random.int(2, 8),
          talk_duration: 0,
          wait_duration: random.int(2, 8),
          full_record_file_link: null,
          last_answered_employee_id: null,
          last_answered_employee_full_name: null,
          tags: [],
        },
      ),
    );
  }

  // Ad cost per paid campaign and day, split over two keywords, in roubles; yesterday back to the history's start.
  for (let back = 1; back <= HISTORY_DAYS; back++) {
    const date = day(new Date(now.getTime() - back * DAY_MS));
    for (const source of SOURCES) {
      if (!source.dailyCost) continue;
      const cost = random.between(...source.dailyCost);
      const share = random.between(0.4, 0.7);
      for (const [keyword, part] of [
        ["диван", share],
        ["купить диван", 1 - share],
      ] as const) {
        push("campaign_daily_stat", {
          date,
          site_id: DEMO_SITE.id,
          site_domain_name: DEMO_SITE.domain,
          campaign_id: source.campaign.id,
          campaign_name: source.campaign.name,
          engine: source.sourceName === "Google Ads" ? "google.adwords" : "yandex.direct",
          keyword,
          cost_sum: (cost * part).toFixed(2),
          currency: "RUB",
        });
      }
    }
  }

  // Deals: some leads become deals a few days later; older ones are closed, won or lost; wholesale in dollars.
  const deals: DemoDeal[] = [];
  for (const contact of contacts) {
    if (!contact.first || contact.lost) continue;
    const chance = { call: 0.34, chat: 0.2, request: 0.3, form: 0.2 }[contact.kind];
    if (random.next() >= chance && !contact.person.wholesale) continue;
    // In calendar days, so that the time of day a run starts at changes no deal.
    const ageDays = Math.round((Date.parse(day(now)) - Date.parse(day(contact.at))) / DAY_MS);
    const createdAt = new Date(Math.min(now.getTime() - 30 * MINUTE_MS, contact.at.getTime() + random.between(0.1, Math.min(4, Math.max(0.1, ageDays - 0.1))) * DAY_MS));
    // A sofa in stock sells within days, a made-to-order one takes weeks: the older the lead, the likelier it is closed.
    const roll = random.next();
    const [won, lost] = ageDays < 2 ? [0.2, 0.3] : ageDays < 10 ? [0.4, 0.6] : [0.42, 0.85];
    const stage = roll < won ? "WON" : roll < lost ? "LOSE" : "EXECUTING";
    const usd = contact.person.wholesale || random.next() < 0.08;
    const amount = usd ? Math.round(random.between(1200, 9500) / 50) * 50 : Math.round(random.between(18_000, 240_000) / 500) * 500;
    deals.push({ person: contact.person, title: random.pick(PRODUCTS), stage, amount, currency: usd ? "USD" : "RUB", createdAt });
  }

  // However small the shop, its revenue comes in both currencies: its oldest deals are won, one of them in dollars.
  const oldest = deals.filter((d) => day(d.createdAt) < day(new Date(now.getTime() - 3 * DAY_MS)));
  for (const currency of ["USD", "RUB"] as const) {
    if (deals.some((d) => d.stage === "WON" && d.currency === currency)) continue;
    const deal = oldest.find((d) => !(d.stage === "WON" && deals.filter((o) => o.stage === "WON" && o.currency === d.currency).length === 1));
    if (!deal) continue;
    deal.amount = currency === "USD" ? 4200 : 96_000;
    deal.currency = currency;
    deal.stage = "WON";
  }

  return { now, contacts, deals, comagic, notifications, forms: formFields, liveFrom };
}

/** Where the demo is sent: the worker (by URL, or `exports.default.fetch` in workerd) and the sandbox's root portal. */
export interface DemoTarget {
  worker: (request: Request) => Promise<Response>;
  workerUrl: string;
  sandboxUrl: string;
  bitrixWebhookUrl: string;
  adminToken: string;
  /** The default portal's COMAGIC_WEBHOOK_TOKEN and _SECRET, and the shipped notification template it is rendered from. */
  webhook: { token: string; secret: string; template: string };
  /** A site in the worker's ALLOWED_ORIGINS: the snippet's forms come from it. */
  siteOrigin: string;
  /** The Bitrix24 user of a manager who has left, still mapped to `buildDemo`'s `departedEmployeeId` in COMAGIC_EMPLOYEES. */
  departedUserId?: number;
  log?: (line: string) => void;
  /** How long to wait for the worker to write and enrich every lead (ms). */
  timeoutMs?: number;
}

export interface DemoResult {
  leads: number;
  contacts: Record<Kind, number>;
  lostCalls: number;
  deals: { won: number; lost: number; open: number; currencies: string[] };
  costDays: number;
  /** A lead with a journey of several visits and a won deal: its card shows the tab at its best. */
  showcaseLeadId: string | null;
  seconds: number;
}

type SandboxLead = Record<string, unknown> & { ID: string; PHONE?: { VALUE: string }[]; EMAIL?: { VALUE: string }[] };

async function hmacHex(body: string, secret: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const digits = (s: string) => s.replace(/\D/g, "");

/** Sends the plan through the worker and waits until the report can show it. Throws with what is missing. */
export async function seedDemo(plan: DemoPlan, target: DemoTarget): Promise<DemoResult> {
  const started = Date.now();
  const log = (line: string) => target.log?.(`${line} (${Math.round((Date.now() - started) / 1000)} s)`);
  const sandbox = async (path: string, body: unknown) => {
    const res = await fetch(`${target.sandboxUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`The sandbox refused ${path}: HTTP ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };
  const worker = async (path: string, init: RequestInit, expect: number[]) => {
    const res = await target.worker(new Request(`${target.workerUrl}${path}`, init));
    if (!expect.includes(res.status)) throw new Error(`The worker answered ${path} with HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    return res;
  };

  await sandbox("/_sandbox/comagic/data", plan.comagic);
  if (target.departedUserId !== undefined) await sandbox("/_sandbox/portal", { inactiveUsers: [target.departedUserId] });
  log(`CoMagic: ${plan.comagic.visitor_sessions?.length} visits, ${plan.comagic.calls?.length} calls, ${plan.comagic.chats?.length} chats, ${plan.comagic.offline_messages?.length} requests`);

  // The history, as `npm run reconcile` reads it: a week a request (four at a time, each its own Data API reads).
  const admin = { authorization: `Bearer ${target.adminToken}`, "content-type": "application/json" };
  const weeks: { from: string; to: string }[] = [];
  for (let from = plan.now.getTime() - (HISTORY_DAYS + 1) * DAY_MS; from < plan.liveFrom.getTime(); from += RECONCILE_STEP_MS) {
    weeks.push({ from: new Date(from).toISOString(), to: new Date(Math.min(plan.liveFrom.getTime(), from + RECONCILE_STEP_MS)).toISOString() });
  }
  let queued = 0;
  for (let i = 0; i < weeks.length; i += 4) {
    const reports = await Promise.all(weeks.slice(i, i + 4).map((week) => worker("/admin/reconcile", { method: "POST", headers: admin, body: JSON.stringify(week) }, [200]).then((res) => res.json())));
    queued += reports.reduce((sum: number, report) => sum + Number((report as { enqueued?: number }).enqueued ?? 0), 0);
  }
  log(`Reconciliation: ${queued} calls, chats and requests queued`);

  for (const values of plan.notifications) {
    const body = target.webhook.template.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => JSON.stringify(values[name] ?? null));
    await worker(
      `/webhooks/comagic?token=${encodeURIComponent(target.webhook.token)}`,
      { method: "POST", headers: { "content-type": "application/json", "x-comagic-signature": await hmacHex(body, target.webhook.secret) }, body },
      [202],
    );
  }
  // As the snippet sends them (sendBeacon: JSON as text/plain), each visitor from an address of their own.
  for (const [i, fields] of plan.forms.entries()) {
    await worker(
      "/forms",
      { method: "POST", headers: { "content-type": "text/plain;charset=UTF-8", origin: target.siteOrigin, "cf-connecting-ip": `198.51.100.${10 + i}` }, body: JSON.stringify(fields) },
      [202],
    );
  }
  log(`Today: ${plan.notifications.length} call notifications, ${plan.forms.length} website forms`);

  // Every person's lead written and enriched (its visits in the CoMagic fields, its credits in the report).
  const people = [...new Set(plan.contacts.map((c) => c.person))];
  const leadOf = (leads: SandboxLead[], person: DemoContact["person"]) =>
    leads.find((l) => l.PHONE?.some((p) => digits(p.VALUE) === person.phone) || (person.email !== null && l.EMAIL?.some((e) => e.VALUE === person.email)));
  const enriched = (lead: SandboxLead | undefined) => Boolean(lead && lead.UF_CRM_CM_SESSIONS !== "" && lead.UF_CRM_CM_SESSIONS !== null && lead.UF_CRM_CM_SESSIONS !== undefined);
  const deadline = Date.now() + (target.timeoutMs ?? 120_000);
  let leads: SandboxLead[] = [];
  let done = 0;
  for (let lastLog = Date.now(); ; await sleep(500)) {
    leads = (await (await fetch(`${target.sandboxUrl}/_sandbox/leads`)).json()) as SandboxLead[];
    done = people.filter((p) => enriched(leadOf(leads, p))).length;
    if (done === people.length) break;
    if (Date.now() > deadline) throw new Error(`Only ${done} of ${people.length} leads were written and enriched in time (${leads.length} leads in the sandbox)`);
    if (Date.now() - lastLog > 10_000) {
      log(`... ${done} of ${people.length} leads written and enriched`);
      lastLog = Date.now();
    }
  }
  log(`Bitrix24: ${leads.length} leads, all enriched`);

  // The sales team: converts leads into deals (the UI's conversion), then closes them through REST.
  const made: { id: number; deal: DemoDeal }[] = [];
  for (const deal of plan.deals) {
    const lead = leadOf(leads, deal.person);
    if (!lead) continue;
    const { id } = (await sandbox("/_sandbox/deals", {
      fields: { TITLE: deal.title, STAGE_ID: "NEW", OPPORTUNITY: String(deal.amount), CURRENCY_ID: deal.currency, ASSIGNED_BY_ID: lead.ASSIGNED_BY_ID },
      fromLead: lead.ID,
      createdAt: deal.createdAt.toISOString(),
    })) as { id: number };
    made.push({ id, deal });
  }
  for (let i = 0; i < made.length; i += 50) {
    const cmd = Object.fromEntries(made.slice(i, i + 50).map(({ id, deal }, n) => [`d${n}`, `crm.deal.update?id=${id}&fields[STAGE_ID]=${deal.stage}`]));
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${target.bitrixWebhookUrl}batch.json`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ halt: 0, cmd }) });
      if (res.ok) break;
      // The worker's follow-ups share the portal's 2 requests a second: wait for the bucket, as any client does.
      if (attempt >= 10) throw new Error(`Bitrix24 refused the deals' stages: HTTP ${res.status}`);
      await sleep(1000);
    }
  }
  log(`Deals: ${made.length} made from leads and moved to their stages`);

  // The report's Refresh, as the portal's administrator clicks it: deals from Bitrix24, ad cost from CoMagic.
  const tokens = await sandbox("/_sandbox/bitrix/app/tokens", { userId: 1 });
  const page = await worker(
    `/bitrix/app?DOMAIN=${encodeURIComponent(String(tokens.DOMAIN))}&PROTOCOL=0&LANG=en`,
    {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        AUTH_ID: String(tokens.AUTH_ID),
        AUTH_EXPIRES: "3600",
        REFRESH_ID: String(tokens.REFRESH_ID),
        member_id: String(tokens.member_id),
        status: "L",
        APPLICATION_TOKEN: String(tokens.APPLICATION_TOKEN),
        PLACEMENT: "CRM_ANALYTICS_MENU",
        PLACEMENT_OPTIONS: "{}",
      }).toString(),
    },
    [200],
  );
  const token = /name="token" value="([^"]+)"/.exec(await page.text())?.[1];
  if (!token) throw new Error("The report page carried no report token");
  // Enrichment stores a lead's credits just after its fields, so the last deals may find their lead not credited yet;
  // the next refresh reads them again (the deal sync re-reads its last minutes) and keeps them.
  let refreshed: { deals?: { kept?: number }; costDays?: string[] } = {};
  const costDays = new Set<string>();
  for (let attempt = 0; attempt < 5; attempt++) {
    const refresh = await worker("/bitrix/report/refresh", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) }, [200, 202]);
    refreshed = (await refresh.json()) as typeof refreshed;
    for (const day of refreshed.costDays ?? []) costDays.add(day);
    if ((refreshed.deals?.kept ?? 0) >= made.length) break;
    await sleep(1000);
  }
  log(`Report: ${refreshed.deals?.kept ?? "?"} of ${made.length} deals kept, cost of ${costDays.size} days imported`);

  const count = (kind: Kind) => plan.contacts.filter((c) => c.kind === kind).length;
  const showcase = made.find(({ deal }) => deal.stage === "WON" && deal.person.visits.length >= 3 && new Set(deal.person.visits.map((v) => v.source.channel)).size >= 2);
  return {
    leads: people.length,
    contacts: { call: count("call"), chat: count("chat"), request: count("request"), form: count("form") },
    lostCalls: plan.contacts.filter((c) => c.lost).length,
    deals: {
      won: made.filter((m) => m.deal.stage === "WON").length,
      lost: made.filter((m) => m.deal.stage === "LOSE").length,
      open: made.filter((m) => m.deal.stage === "EXECUTING").length,
      currencies: [...new Set(made.map((m) => m.deal.currency))],
    },
    costDays: costDays.size,
    showcaseLeadId: showcase ? (leadOf(leads, showcase.deal.person)?.ID ?? null) : null,
    seconds: Math.round((Date.now() - started) / 1000),
  };
}
