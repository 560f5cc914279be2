import type { Messages } from "./en";

/** Тексты отчёта и страницы доступа на русском: те же ключи, что в `en.ts`. */
export const ru: Messages = {
  reportTitle: "Атрибуция CoMagic",
  period: "Период",
  periods: { "7d": "Последние 7 дней", "30d": "Последние 30 дней", "90d": "Последние 90 дней", this_month: "Этот месяц", last_month: "Прошлый месяц", custom: "Произвольный" },
  from: "С",
  to: "По",
  model: "Модель",
  models: {
    first_touch: "Первое касание",
    last_touch: "Последнее касание",
    last_non_direct: "Последний непрямой",
    linear: "Линейная",
    time_decay: "С угасанием (полураспад 7 дней)",
    position_based: "По позиции (40/20/40)",
  },
  grouping: "Группировка",
  groupings: {
    utm_source: "utm_source",
    utm_medium: "utm_medium",
    source_medium: "Источник / канал",
    utm_campaign: "utm_campaign",
    comagic_campaign: "Кампания CoMagic",
    comagic_channel: "Канал CoMagic",
  },
  entity: "Считать",
  entities: { lead: "Лиды", deal: "Сделки (портал без лидов)" },
  apply: "Показать",
  refresh: "Обновить сделки и расходы",
  refreshing: "Обновляем…",
  refreshFailed: "Обновить не удалось; попробуйте через минуту.",
  refreshRunning: "Ещё идёт другое обновление; цифры обновятся, когда оно закончится.",
  exportFailed: "Выгрузить не удалось; попробуйте через минуту.",
  exportCsv: "Выгрузить CSV",
  columns: {
    group: "Группа",
    lead: "Лиды",
    deal: "Новые сделки",
    contacts: "Новые контакты",
    deals: "Сделки",
    won: "Успешные",
    revenue: "Выручка (успешные)",
    dealRate: "Лид → сделка",
    wonRate: "Сделка → успех",
    cost: "Расход на рекламу",
    costPerConversion: "Цена лида",
    costPerWon: "Цена успешной сделки",
    romi: "ROMI",
  },
  total: "Итого",
  notSet: "(не задано)",
  noVisit: "(нет визита до лида)",
  chartTitle: "Выручка и расход по группам",
  chartRevenue: "Выручка",
  chartCost: "Расход",
  periodShown: (from: string, to: string, timeZone: string) => `${from} – ${to}, по дате создания лида (${timeZone})`,
  noCredits:
    "Обогащённых лидов пока нет: отчёт заполняется по мере того, как Data API CoMagic обогащает лиды (примерно через минуту после звонка или заявки). Для старых лидов запустите `npm run backfill:attribution`.",
  noCreditsInPeriod: "За этот период обогащённых лидов нет.",
  noDeals: "Сделки ещё не синхронизированы: они читаются из Битрикс24 каждые 10 минут, или сейчас — кнопкой «Обновить».",
  dealsBehind:
    "Из Битрикс24 прочитаны ещё не все изменённые сделки (за одну синхронизацию читается ограниченное число, чтобы не тратить лимит запросов портала): остальные прочитают следующие синхронизации.",
  costOnlyCampaign: "Расходы CoMagic отдаёт только по своим рекламным кампаниям (в отчёте о расходах нет UTM-меток): сгруппируйте по кампании CoMagic, чтобы увидеть расход, цену лида и ROMI.",
  costMissing: "CoMagic недоступен или расходы ещё не загружены: в колонках расходов —.",
  noDataApi: "Data API CoMagic не настроен в воркере: расходов нет.",
  lastSync: (when: string) => `Сделки синхронизированы: ${when}.`,
  dealsToComagic: (sent: number, waiting: number, rejected: number) =>
    `Сделок передано в сквозную аналитику CoMagic: ${sent}` +
    (waiting ? `, ${waiting} ждут следующей синхронизации` : "") +
    (rejected ? `, ${rejected} CoMagic отклонил (см. «мёртвые письма»)` : "") +
    ".",
  dealsNotLinked: (count: number) => `Сделок без связи со звонком или заявкой в CoMagic: ${count}: обращение было больше чем за 30 дней до сделки, а такие CoMagic не связывает.`,
  metricaDay: (day: string, o: { sent: number; linked: number; notLinked: number; processing: number; tooOld: number; noVisitor: number; failed: number }) =>
    `Яндекс Метрика, ${day}: отправлено конверсий: ${o.sent}` +
    (o.processing ? `, загрузок ещё в обработке: ${o.processing}` : `, привязано: ${o.linked}, не привязано: ${o.notLinked}`) +
    (o.tooOld ? `; не отправлено ${o.tooOld}: последний визит посетителя больше 21 дня назад` : "") +
    (o.noVisitor ? `; не отправлено ${o.noVisitor}: нет идентификатора посетителя Метрики` : "") +
    (o.failed ? `; Метрика отклонила ${o.failed} (проверьте токен и счётчик)` : "") +
    ".",
  accessDeniedTitle: "Нет доступа к отчёту",
  accessDenied: (userId: string) =>
    `Отчёт об атрибуции показывает данные всей компании, поэтому его видят только администраторы портала и пользователи из REPORT_USER_IDS. Попросите администратора Битрикс24 добавить ваш id пользователя (${userId}) в REPORT_USER_IDS в настройках воркера.`,
  expired: "Срок действия страницы отчёта истёк; откройте приложение в Битрикс24 заново.",
  tab: {
    journey: "Путь клиента",
    timesIn: (timeZone: string) => `время: ${timeZone}`,
    visit: "Визит",
    cameFrom: (referrer: string) => `переход с ${referrer}`,
    enteredAt: (page: string) => `страница входа ${page}`,
    contacts: { call: "Звонок", chat: "Чат", offline_message: "Заявка", goal: "Цель" } as Record<string, string>,
    comagicId: (id: string | number) => `id в CoMagic ${id}`,
    attribution: "Атрибуция",
    attributionHelp: "Как каждая модель распределяет этот лид по каналам визитов посетителя. «direct» — визит без UTM-меток, без источника перехода и без другого канала от CoMagic.",
    channel: "Канал",
    noVisitor:
      "У этого лида нет id посетителя CoMagic, поэтому путь клиента показать нельзя. Лиды получают его из звонков и чатов, которые CoMagic отследил на сайте, и из форм сайта, когда на сайте стоит сниппет:",
    notOurs:
      "ID посетителя CoMagic в этой карточке записан не интеграцией (введён или изменён вручную), поэтому его визиты не показаны. Путь клиента появится, когда звонок, чат или форма этого клиента запишут его.",
    notLoaded: "Касания ещё не загружены.",
    notLoadedReasons: {
      no_data_api: "Data API CoMagic не настроен в воркере, поэтому касания загрузить нельзя.",
      no_visits: "У CoMagic пока нет визитов этого посетителя; его отчёты отстают на несколько минут.",
    },
    unreachable: "CoMagic сейчас недоступен, поэтому путь клиента не показан.",
    noPhone: "У этого лида нет номера телефона.",
    callNotConfigured: "Звонок из карточки не настроен в воркере.",
    call: (phone: string | null) => (phone ? `Позвонить ${phone}` : "Позвонить"),
    confirmCall: "Подтвердите: позвонить ",
    clickAgain: "Нажмите ещё раз, чтобы позвонить на этот номер.",
    calling: "Звоним на ваш телефон…",
    ringing: "Ваш телефон звонит; клиенту позвоним, когда вы ответите.",
    callFailed: "Звонок начать не удалось.",
    workerUnreachable: "Воркер недоступен.",
  },
  callRefusals: {
    not_a_phone: (phone: string) => `${phone} — не номер телефона.`,
    country_not_allowed: (country: string | null, allowed: readonly string[]) => `Звонки в ${country ?? "регион этого номера"} здесь запрещены (CALL_COUNTRIES: ${allowed.join(", ")}).`,
    number_type_refused: (phone: string, type: string) => `${phone} — номер типа ${type}; из карточки звоним только на мобильные и городские номера.`,
    not_configured: "Звонок из карточки не настроен в воркере (доступы CoMagic и COMAGIC_VIRTUAL_NUMBER).",
    no_phone: (entity: string) => `У ${entity === "deal" ? "сделки" : entity === "contact" ? "контакта" : "лида"} нет номера телефона.`,
    number_changed: (entity: string) =>
      `Номер ${entity === "deal" ? "сделки" : entity === "contact" ? "контакта" : "лида"} изменился после открытия карточки; откройте карточку заново, чтобы увидеть номер, на который позвоним.`,
    user_not_mapped: "Ваш пользователь Битрикс24 не связан с сотрудником CoMagic: попросите администратора добавить вас в COMAGIC_EMPLOYEES.",
    daily_limit: (whose: "user_limit" | "portal_limit") =>
      `${whose === "user_limit" ? "Вы сделали" : "С этого портала сделано"} столько звонков за сегодня, сколько позволяет дневной лимит (защита от телефонного мошенничества); если это настоящая работа, попросите администратора поднять ${whose === "user_limit" ? "CALL_DAILY_LIMIT_PER_USER" : "CALL_DAILY_LIMIT"}.`,
    comagic_refused: (mnemonic: string) => `CoMagic не начал звонок: ${mnemonic}`,
    invalid_token: "Кнопка звонка устарела или не подлинная; откройте карточку заново",
    rate_limited: "Слишком много звонков за минуту; подождите немного и попробуйте снова",
    already_started: "Этот звонок уже начат из этой карточки; чтобы позвонить снова, откройте карточку заново",
    not_installed: "Приложение CoMagic больше не установлено на этом портале",
    bitrix_unavailable: "Битрикс24 не ответил вовремя; попробуйте через минуту",
  },
  install: {
    tabPlacement: { TITLE: "CoMagic", DESCRIPTION: "Касания, атрибуция и звонок из карточки через CoMagic" },
    reportPlacement: { TITLE: "CoMagic: атрибуция", DESCRIPTION: "Лиды, сделки, выручка и расходы на рекламу по каналам в каждой модели атрибуции" },
    title: "CoMagic установлен",
    installed: "CoMagic установлен: в карточках лидов, сделок и контактов появилась вкладка «CoMagic», а в CRM → Аналитика — отчёт об атрибуции.",
    requiredFields: (fields: readonly { entity: string; field: string; title: string }[]) =>
      `Обязательные на этом портале поля, которые воркер заполняет не всегда: ${fields.map((f) => `${f.entity}: ${f.field} («${f.title}»)`).join(", ")}. Если проверка обязательных полей включена для приложений, новые записи (${[...new Set(fields.map((f) => f.entity))].join(", ")}) не создадутся: выключите её (CRM → Настройки → Другие → Прочие настройки → Приложения) или задайте значения в REQUIRED_FIELD_DEFAULTS.`,
  },
  pageErrors: {
    invalid_app_page: "Эта страница открывается из приложения CoMagic в Битрикс24: CRM → Аналитика → CoMagic: атрибуция",
    invalid_placement: "Эта страница открывается со вкладки CoMagic в карточке лида или сделки Битрикс24",
    invalid_card: "Карточка не сообщила, какой лид или сделку она показывает",
    not_installed: "Приложение CoMagic не установлено на этом портале (или установлено на другой воркер)",
    invalid_install: "В запросе установки нет AUTH_ID, REFRESH_ID или member_id",
    rate_limited: "Слишком много запросов с этого адреса; попробуйте через минуту",
    report_rate_limited: "Слишком много запросов к отчёту за минуту; попробуйте через минуту",
    not_verified: "Битрикс24 не принял токен этого запроса для этого портала; откройте карточку заново",
    foreign_app: "Запрос пришёл от другого приложения Битрикс24, а не от приложения CoMagic, установленного на этом портале",
    bitrix_unavailable: "Битрикс24 не ответил вовремя; откройте вкладку через минуту",
    not_admin: "Установить приложение CoMagic может только администратор Битрикс24",
    foreign_portal: "Этот обработчик обслуживает другой портал Битрикс24",
  },
  agency: {
    title: "Порталы",
    tokenPrompt: "Токен администратора развёртывания (ADMIN_TOKEN). Он хранится только в этой вкладке браузера, пока она открыта.",
    tokenLabel: "Токен администратора",
    open: "Открыть",
    forget: "Забыть токен",
    refresh: "Обновить",
    loading: "Загрузка…",
    unauthorized: "Токен не принят; введите его снова.",
    lockedOut: "Слишком много неверных токенов с этого адреса; попробуйте через минуту.",
    failed: "Обработчик не ответил; попробуйте чуть позже.",
    noPortals: "В этом развёртывании ещё нет порталов.",
    updated: "Обновлено",
    otherLanguage: "English",
    columns: {
      portal: "Портал",
      status: "Состояние",
      today: "Сегодня",
      week: "За неделю",
      lastEvent: "Последнее событие",
      feedLag: "Отставание ленты",
      errors: "Последние ошибки",
      deadLetters: "Невыполненные задания",
      points: "Баллы CoMagic",
      report: "Отчёт синхронизирован",
    },
    statuses: { ok: "В порядке", degraded: "С перебоями", failing: "Сбой" },
    sources: { call: "Звонки", chat: "Чаты", request: "Заявки", form: "Формы" },
    never: "не было",
    ago: "{} назад",
    justNow: "только что",
    units: { min: "мин", h: "ч", d: "дн." },
    details: "Подробнее",
    back: "Все порталы",
    lastNotification: "Последнее уведомление CoMagic",
    feed: "Лента CoMagic",
    feedLastSuccess: "Последнее чтение без ошибки",
    feedCursor: "Прочитано до",
    bitrix24: "Битрикс24",
    comagic: "CoMagic",
    deadLettersTitle: "Невыполненные задания, ждущие повтора",
    noDeadLetters: "Невыполненных заданий нет.",
    moreLetters: "Показаны только последние {}; все перечисляет GET /admin/dead-letters.",
    letterColumns: { failedAt: "Когда", job: "Задание", code: "Код", reason: "Причина", attempts: "Попыток" },
    replay: "Повторить",
    replaying: "Отправка…",
    replayed: "Отправлено в очередь",
    replayFailed: "Повтор не удался",
    resetAt: "сброс",
    reasons: {
      settings_invalid: (settings: readonly string[]) => `настройки портала не проходят проверку (${settings.join(", ")}): его уведомления, формы и задания отклоняются`,
      feed_failing: (minutes: number | null, error: string) =>
        minutes === null ? `лента CoMagic ещё ни разу не прочиталась без ошибки: ${error}` : `лента CoMagic не читается уже ${agencyDuration(minutes)}: ${error}`,
      points_out: (minutes: number) => `баллы Data API CoMagic на сегодня исчерпаны (вернутся через ${agencyDuration(minutes)}): до тех пор лиды приходят только из уведомлений`,
      dead_letters: (count: number) => `невыполненные задания ждут повтора: ${count}`,
      notifications_stopped: (minutes: number | null, callsMinutes: number) =>
        `${minutes === null ? "уведомлений CoMagic ещё не было" : `уведомлений CoMagic нет уже ${agencyDuration(minutes)}`}, а в отчётах CoMagic есть звонки (последний найден ${agencyDuration(callsMinutes)} назад): проверьте уведомление в CoMagic`,
      report_stale: (minutes: number) => `сделки отчёта последний раз синхронизированы ${agencyDuration(minutes)} назад`,
      conversions_refused: (destination: "metrica" | "ga4", count: number) =>
        destination === "metrica"
          ? `Яндекс Метрика сегодня отклонила конверсий: ${count} (проверьте токен и счётчик)`
          : `GA4 сегодня отклонил конверсий: ${count} (проверьте идентификатор потока и секрет API)`,
    },
    alert: {
      changed: (portal: string, status: string, reasons: readonly string[]) => `CoMagic → Битрикс24: портал ${portal} — ${status.toLowerCase()}: ${reasons.join("; ")}`,
      recovered: (portal: string, was: string) => `CoMagic → Битрикс24: портал ${portal} снова в порядке (было: ${was.toLowerCase()})`,
    },
  },
};

/** Промежуток для причин на странице агентства: минуты, затем часы, затем дни. */
function agencyDuration(minutes: number): string {
  if (minutes < 60) return `${minutes} мин`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)} ч`;
  return `${Math.floor(minutes / 1440)} дн.`;
}
