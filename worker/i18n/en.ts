/** Every text a person reads in the Bitrix24 app's report and its access page, in English. `ru.ts` has the same keys. */
export const en = {
  reportTitle: "CoMagic attribution",
  period: "Period",
  periods: { "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days", this_month: "This month", last_month: "Last month", custom: "Custom" },
  from: "From",
  to: "To",
  model: "Model",
  models: {
    first_touch: "First touch",
    last_touch: "Last touch",
    last_non_direct: "Last non-direct",
    linear: "Linear",
    time_decay: "Time decay (7-day half-life)",
    position_based: "Position-based (40/20/40)",
  },
  grouping: "Group by",
  groupings: {
    utm_source: "utm_source",
    utm_medium: "utm_medium",
    source_medium: "Source / medium",
    utm_campaign: "utm_campaign",
    comagic_campaign: "CoMagic campaign",
    comagic_channel: "CoMagic channel",
  },
  entity: "Count",
  entities: { lead: "Leads", deal: "Deals (portal without leads)" },
  apply: "Apply",
  refresh: "Refresh deals and cost",
  refreshing: "Refreshing…",
  refreshFailed: "The refresh failed; try again in a minute.",
  refreshRunning: "Another refresh is still running; the figures update when it ends.",
  exportFailed: "The export failed; try again in a minute.",
  exportCsv: "Export CSV",
  columns: {
    group: "Group",
    lead: "Leads",
    deal: "New deals",
    contacts: "Contacts made",
    deals: "Deals",
    won: "Won",
    revenue: "Revenue (won)",
    dealRate: "Lead → deal",
    wonRate: "Deal → won",
    cost: "Ad cost",
    costPerConversion: "Cost per lead",
    costPerWon: "Cost per won deal",
    romi: "ROMI",
  },
  total: "Total",
  notSet: "(not set)",
  noVisit: "(no visit before the lead)",
  chartTitle: "Revenue and ad cost by group",
  chartRevenue: "Revenue",
  chartCost: "Cost",
  periodShown: (from: string, to: string, timeZone: string) => `${from} – ${to}, by lead creation date (${timeZone})`,
  noCredits: "No enriched leads yet: the report fills in as CoMagic's Data API enriches leads (a minute or so after each call or form). For older leads run `npm run backfill:attribution`.",
  noCreditsInPeriod: "No enriched leads in this period.",
  noDeals: "No deals synced yet: deals are read from Bitrix24 every 10 minutes, or now with Refresh.",
  dealsBehind: "Not every changed deal is read from Bitrix24 yet (each sync reads a limited number, to spare the portal's request budget): the next syncs read the rest.",
  costOnlyCampaign: "Ad cost comes from CoMagic per CoMagic campaign only (its cost report has no UTM tags): group by CoMagic campaign to see cost, cost per lead and ROMI.",
  costMissing: "CoMagic could not be reached for ad cost, or no cost is imported yet: cost columns show —.",
  noDataApi: "The CoMagic Data API is not configured on the worker: no ad cost.",
  lastSync: (when: string) => `Deals last synced: ${when}.`,
  dealsToComagic: (sent: number, waiting: number, rejected: number) =>
    `Deals sent to CoMagic's end-to-end analytics: ${sent}` +
    (waiting ? `, ${waiting} waiting for the next sync` : "") +
    (rejected ? `, ${rejected} refused by CoMagic (see the dead letters)` : "") +
    ".",
  dealsNotLinked: (count: number) => `${count} deal(s) are not linked to their call or request in CoMagic: it came more than 30 days before the deal, and CoMagic links none older.`,
  metricaDay: (day: string, o: { sent: number; linked: number; notLinked: number; processing: number; tooOld: number; noVisitor: number; failed: number }) =>
    `Yandex Metrica, ${day}: ${o.sent} conversion(s) sent` +
    (o.processing ? `, ${o.processing} upload(s) still processing` : `, ${o.linked} linked, ${o.notLinked} not linked`) +
    (o.tooOld ? `; ${o.tooOld} not sent: the visitor's last visit was over 21 days ago` : "") +
    (o.noVisitor ? `; ${o.noVisitor} not sent: no Metrica visitor id` : "") +
    (o.failed ? `; ${o.failed} refused by Metrica (check the token and counter)` : "") +
    ".",
  accessDeniedTitle: "No access to the report",
  accessDenied: (userId: string) =>
    `The attribution report shows company-wide figures, so only the portal's administrators and the users listed in REPORT_USER_IDS see it. Ask a Bitrix24 administrator to add your user id (${userId}) to REPORT_USER_IDS in the worker's settings.`,
  expired: "This report page has expired; open the app again from Bitrix24.",
  /** The CoMagic tab in lead, deal and contact cards. */
  tab: {
    journey: "Journey",
    timesIn: (timeZone: string) => `times in ${timeZone}`,
    visit: "Visit",
    cameFrom: (referrer: string) => `from ${referrer}`,
    enteredAt: (page: string) => `entered at ${page}`,
    contacts: { call: "Call", chat: "Chat", offline_message: "Form", goal: "Goal" } as Record<string, string>,
    comagicId: (id: string | number) => `CoMagic id ${id}`,
    attribution: "Attribution",
    attributionHelp: 'How each model credits this lead to the channels of the visitor\'s visits. "direct" is a visit with no UTM tags, no referrer and no other channel from CoMagic.',
    channel: "Channel",
    noVisitor:
      "This lead has no CoMagic visitor id, so there is no journey to show. Leads get one from calls and chats CoMagic tracked on the site, and from website forms once the site carries the snippet:",
    notOurs:
      "The CoMagic visitor id on this card was not set by the integration (it was typed in or changed by hand), so its visits are not shown. The journey appears once a call, chat or form of this client sets it.",
    notLoaded: "The touchpoints are not loaded yet.",
    notLoadedReasons: {
      no_data_api: "The CoMagic Data API is not configured on the worker, so touchpoints cannot be loaded.",
      no_visits: "CoMagic has no visits for this visitor yet; its reports lag a few minutes behind.",
    },
    unreachable: "CoMagic cannot be reached right now, so the journey is not shown.",
    noPhone: "This lead has no phone number.",
    callNotConfigured: "Click-to-call is not configured on the worker.",
    call: (phone: string | null) => (phone ? `Call ${phone}` : "Call"),
    confirmCall: "Confirm: call ",
    clickAgain: "Click again to call this number.",
    calling: "Calling your phone…",
    ringing: "Your phone is ringing; the client is called when you answer.",
    callFailed: "The call could not be started.",
    workerUnreachable: "The worker could not be reached.",
  },
  /** Why Call refused, as the sales manager reads it (the code stays in the log). */
  callRefusals: {
    not_a_phone: (phone: string) => `${phone} is not a valid phone number.`,
    country_not_allowed: (country: string | null, allowed: readonly string[]) => `Calls to ${country ?? "this number's region"} are not allowed here (CALL_COUNTRIES: ${allowed.join(", ")}).`,
    number_type_refused: (phone: string, type: string) => `${phone} is a ${type} number; click-to-call dials only mobile and landline numbers.`,
    not_configured: "Click-to-call is not configured on the worker (CoMagic credentials and COMAGIC_VIRTUAL_NUMBER).",
    no_phone: (entity: string) => `This ${entity} has no phone number to call.`,
    number_changed: (entity: string) => `The ${entity}'s phone number changed since the card was opened; reopen the card to see the number that will be called.`,
    user_not_mapped: "Your Bitrix24 user is not linked to a CoMagic employee: ask an admin to add you to COMAGIC_EMPLOYEES.",
    daily_limit: (whose: "user_limit" | "portal_limit") =>
      `${whose === "user_limit" ? "You have made" : "This portal has made"} as many calls today as the daily limit allows (a guard against toll fraud); ask an admin to raise ${whose === "user_limit" ? "CALL_DAILY_LIMIT_PER_USER" : "CALL_DAILY_LIMIT"} if this is real work.`,
    comagic_refused: (mnemonic: string) => `CoMagic did not start the call: ${mnemonic}`,
    invalid_token: "This call button has expired or is not genuine; reopen the lead card",
    rate_limited: "Too many calls in a minute; wait a little and try again",
    already_started: "This call was already started from this card; reopen the card to call again",
    not_installed: "The CoMagic app is no longer installed on this portal",
    bitrix_unavailable: "Bitrix24 did not answer in time; try again in a moment",
  },
  /** The page Bitrix24 shows after the install, and the errors the app's pages show. */
  install: {
    tabPlacement: { TITLE: "CoMagic", DESCRIPTION: "Touchpoints, attribution and click-to-call from CoMagic" },
    reportPlacement: { TITLE: "CoMagic: attribution", DESCRIPTION: "Leads, deals, revenue and ad cost by channel under each attribution model" },
    title: "CoMagic installed",
    installed: 'CoMagic is installed: lead, deal and contact cards now have a "CoMagic" tab, and CRM → Analytics has the attribution report.',
    requiredFields: (fields: readonly { entity: string; field: string; title: string }[]) =>
      `Fields required on this portal and not always filled by the worker: ${fields.map((f) => `${f.entity} field ${f.field} ("${f.title}")`).join(", ")}. If required-field checks are on for applications, new ${[...new Set(fields.map((f) => `${f.entity}s`))].join(" and ")} fail: turn them off (CRM → Settings → Other → Other settings → Applications) or give values in REQUIRED_FIELD_DEFAULTS.`,
  },
  pageErrors: {
    invalid_app_page: "This page opens from the CoMagic app in Bitrix24: CRM → Analytics → CoMagic: attribution",
    invalid_placement: "This page opens from the CoMagic tab of a lead or deal card in Bitrix24",
    invalid_card: "The card did not say which lead or deal it shows",
    not_installed: "The CoMagic app is not installed on this portal (or was installed on another worker)",
    invalid_install: "The install request lacks AUTH_ID, REFRESH_ID or member_id",
    rate_limited: "Too many requests from this address; try again in a minute",
    report_rate_limited: "Too many report requests in a minute; try again in a minute",
    not_verified: "Bitrix24 did not accept this request's token for this portal; reopen the card",
    foreign_app: "This request came from another Bitrix24 application than the CoMagic app installed on this portal",
    bitrix_unavailable: "Bitrix24 did not answer in time; reopen the tab in a moment",
    not_admin: "Only a Bitrix24 administrator can install the CoMagic app",
    foreign_portal: "This worker serves another Bitrix24 portal",
  },
  /** The agency's page (/agency), its JSON's reasons, and the alerts a portal's change of health posts. */
  agency: {
    title: "Portals",
    tokenPrompt: "The deployment's admin token (ADMIN_TOKEN). It stays in this browser tab only, until the tab is closed.",
    tokenLabel: "Admin token",
    open: "Open",
    forget: "Forget the token",
    refresh: "Refresh",
    loading: "Loading…",
    unauthorized: "The token was not accepted; enter it again.",
    lockedOut: "Too many wrong tokens from this address; try again in a minute.",
    failed: "The worker did not answer; try again in a moment.",
    noPortals: "This deployment has no portals yet.",
    updated: "Updated",
    otherLanguage: "Русский",
    columns: {
      portal: "Portal",
      status: "Status",
      today: "Today",
      week: "This week",
      lastEvent: "Last event",
      feedLag: "Feed lag",
      errors: "Last errors",
      deadLetters: "Dead letters",
      points: "CoMagic points left",
      report: "Report synced",
    },
    statuses: { ok: "OK", degraded: "Degraded", failing: "Failing" },
    sources: { call: "Calls", chat: "Chats", request: "Requests", form: "Forms" },
    never: "never",
    ago: "{} ago",
    justNow: "just now",
    units: { min: "min", h: "h", d: "days" },
    details: "Details",
    back: "All portals",
    lastNotification: "Last CoMagic notification",
    feed: "CoMagic feed",
    feedLastSuccess: "Last read without error",
    feedCursor: "Read up to",
    bitrix24: "Bitrix24",
    comagic: "CoMagic",
    deadLettersTitle: "Dead letters waiting",
    noDeadLetters: "No dead letters wait.",
    moreLetters: "Only the newest {} are shown; GET /admin/dead-letters lists them all.",
    letterColumns: { failedAt: "Failed", job: "Job", code: "Code", reason: "Reason", attempts: "Attempts" },
    replay: "Replay",
    replaying: "Sending…",
    replayed: "Sent back to its queue",
    replayFailed: "The replay failed",
    resetAt: "reset",
    reasons: {
      settings_invalid: (settings: readonly string[]) => `its settings do not parse (${settings.join(", ")}): its notifications, forms and jobs are refused`,
      feed_failing: (minutes: number | null, error: string) =>
        minutes === null ? `the CoMagic feed has never read without error: ${error}` : `the CoMagic feed has not read for ${agencyDuration(minutes)}: ${error}`,
      points_out: (minutes: number) => `CoMagic's Data API points for today are spent (they come back in ${agencyDuration(minutes)}): until then only notifications make leads`,
      dead_letters: (count: number) => (count === 1 ? "1 dead letter waits for a replay" : `${count} dead letters wait for a replay`),
      notifications_stopped: (minutes: number | null, callsMinutes: number) =>
        `${minutes === null ? "no CoMagic notification has come yet" : `no CoMagic notification for ${agencyDuration(minutes)}`} while CoMagic's reports show calls (the last found ${agencyDuration(callsMinutes)} ago): check the notification in CoMagic`,
      report_stale: (minutes: number) => `the report's deals were last synced ${agencyDuration(minutes)} ago`,
      conversions_refused: (destination: "metrica" | "ga4", count: number) =>
        destination === "metrica"
          ? `Yandex Metrica refused ${count} conversion(s) today: check the token and counter`
          : `GA4 refused ${count} conversion(s) today: check the measurement id and API secret`,
    },
    alert: {
      changed: (portal: string, status: string, reasons: readonly string[]) => `CoMagic → Bitrix24: portal ${portal} is ${status.toLowerCase()}: ${reasons.join("; ")}`,
      recovered: (portal: string, was: string) => `CoMagic → Bitrix24: portal ${portal} is OK again (it was ${was.toLowerCase()})`,
    },
  },
};

/** A span for the agency's reasons: minutes, then hours, then days. */
function agencyDuration(minutes: number): string {
  if (minutes < 60) return `${minutes} min`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)} h`;
  return `${Math.floor(minutes / 1440)} days`;
}

export type Messages = typeof en;
