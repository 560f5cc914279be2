/*
 * The "CoMagic" tab in lead and deal cards (CRM_*_DETAIL_TAB placements): the visitor's journey, attribution and the
 * Call button, for the card's portal (bitrix-app/tab.ts; the page itself is bitrix-tab-page.ts).
 */
import { Hono } from "hono/tiny";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import { openTab } from "../bitrix-app/tab";
import { CARD_PLACEMENTS } from "../bitrix/crm-card";
import { signTabToken } from "../bitrix-app/tab-token";
import { callCountries } from "../config";
import { languageOf, messagesFor, pageError } from "../i18n";
import { dataApiClientFor } from "../wiring";
import { limitBody } from "./body-limit";
import { renderTabPage } from "./bitrix-tab-page";
import { APP_MAX_BYTES, appContext, appPageHeaders, checkApplicationToken, checkDomain, htmlError, limitByIp, refusedPage, text } from "./bitrix-app-context";

const tabForm = z.object({ AUTH_ID: text, member_id: text, PLACEMENT: z.enum(CARD_PLACEMENTS), PLACEMENT_OPTIONS: z.string().max(5000), APPLICATION_TOKEN: text.optional() });
const placementOptions = z.object({ ID: z.union([z.string(), z.number()]).transform(String).pipe(z.string().regex(/^\d+$/)) }).loose();

export const bitrixTabRoute = new Hono<AppEnv>();

bitrixTabRoute.use("*", limitBody(APP_MAX_BYTES));

bitrixTabRoute.post("/tab", async (c) => {
  try {
    await limitByIp(c);
    const form = tabForm.safeParse(await c.req.parseBody());
    if (!form.success) throw pageError(400, "invalid_placement");
    const { app, origin, installs, config, journeys, visitors, userClient } = await appContext(c, form.data.member_id);
    checkDomain(c, origin, c.req.query("DOMAIN"));
    const install = await installs.get(form.data.member_id);
    if (!install) throw pageError(401, "not_installed");
    await checkApplicationToken(form.data.APPLICATION_TOKEN, install.applicationToken);
    let entity: z.infer<typeof placementOptions>;
    try {
      entity = placementOptions.parse(JSON.parse(form.data.PLACEMENT_OPTIONS));
    } catch {
      throw pageError(400, "invalid_card");
    }
    const opened = await openTab(
      { memberId: install.memberId, placement: form.data.PLACEMENT, entityId: entity.ID },
      {
        userClient: userClient(form.data.AUTH_ID),
        appCode: app.appCode,
        journeys,
        visitors,
        // A journey the tab has not cached can wait; the day's last points are the feed's.
        dataApi: dataApiClientFor(config, c.env, "deferrable"),
        timeZone: config.COMAGIC_TIMEZONE,
        defaultRegion: config.DEFAULT_PHONE_REGION,
        callCountries: callCountries(config),
        now: () => new Date(),
        nonce: () => crypto.randomUUID(),
      },
    );
    if (!opened.ok) throw refusedPage(opened.refusal);
    const { view } = opened;
    const workerOrigin = new URL(c.req.url).origin;
    const language = languageOf(c.req.query("LANG"));
    const cspNonce = crypto.randomUUID().replace(/-/g, "");
    appPageHeaders(c, install.origin, cspNonce);
    c.get("log").info("tab.opened", { memberId: install.memberId, userId: view.userId, entity: view.card.entity, entityId: view.card.id, journey: view.journeyState.kind });
    return c.html(
      renderTabPage({
        view,
        token: await signTabToken(view.claims, app.tabTokenKeys),
        callUrl: `${workerOrigin}/bitrix/call`,
        snippetUrl: `${workerOrigin}/snippet.js`,
        timeZone: config.COMAGIC_TIMEZONE,
        canCall: Boolean(config.COMAGIC_VIRTUAL_NUMBER && c.env.CALL_RATE_LIMITER),
        cspNonce,
        language,
        messages: messagesFor(language),
      }),
    );
  } catch (error) {
    return htmlError(c, error);
  }
});
