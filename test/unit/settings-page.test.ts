import { describe, expect, it } from "vitest";
import { pageHasSnippet, platformOf, secretHint, settingsOfChange } from "../../worker/bitrix-app/settings";
import { settingsMessages } from "../../worker/i18n/settings";
import { NOTIFICATION_BODY } from "../../worker/routes/bitrix-settings-page";
import template from "../../docs/comagic-call-notification.template?raw";

/* The settings page's rules (issue #24): what a change writes, how a secret is shown, whether a site has the tag. */

const WORKER = "https://worker.example.workers.dev";
const m = settingsMessages("en");

describe("a change from the settings page", () => {
  it("keeps a stored secret when its field is left empty, and removes a plain setting that is emptied", () => {
    expect(settingsOfChange({ settings: { COMAGIC_PASSWORD: "", COMAGIC_API_TOKEN: "", ALLOWED_ORIGINS: "", COMAGIC_LOGIN: "api" } }, null)).toEqual({ ALLOWED_ORIGINS: null, COMAGIC_LOGIN: "api" });
  });

  it("sets both API addresses from the platform, and the local sandbox only when the deployment has one", () => {
    expect(settingsOfChange({ platform: "uis", settings: {} }, null)).toEqual({ COMAGIC_DATA_API_URL: "https://dataapi.uiscom.ru/v2.0", COMAGIC_CALL_API_URL: "https://callapi.uiscom.ru/v4.0" });
    expect(settingsOfChange({ platform: "local", settings: {} }, null)).toEqual({});
    expect(settingsOfChange({ platform: "local", settings: {} }, { data: "http://127.0.0.1:1/d", call: "http://127.0.0.1:1/c" })).toEqual({
      COMAGIC_DATA_API_URL: "http://127.0.0.1:1/d",
      COMAGIC_CALL_API_URL: "http://127.0.0.1:1/c",
    });
    expect(platformOf("https://dataapi.callgear.com/v2.0", null)).toBe("callgear");
    expect(platformOf("https://proxy.example/v2.0", null)).toBe("custom");
  });

  it("shows a secret by its last two characters only", () => {
    expect(secretHint("0123456789abcdef7f", m)).toBe("set, ends in …7f");
    expect(secretHint(undefined, m)).toBe("not set");
    // A short secret would be half given away by two characters.
    expect(secretHint("abc", m)).toBe("set, ends in …");
  });
});

describe("a page of the site", () => {
  it("has the snippet when a script loads this portal's /s/<key>.js from this worker", () => {
    expect(pageHasSnippet(`<script src="${WORKER}/s/shop-msk.js" async></script>`, WORKER, "shop-msk", false)).toBe(true);
    expect(pageHasSnippet(`<script async src='${WORKER}/s/shop-msk.js?v=2'></script>`, WORKER, "shop-msk", false)).toBe(true);
  });

  it("does not have it with another portal's tag, another worker's, or the tag in a comment's text only", () => {
    expect(pageHasSnippet(`<script src="${WORKER}/s/other.js"></script>`, WORKER, "shop-msk", false)).toBe(false);
    expect(pageHasSnippet(`<script src="https://evil.example/s/shop-msk.js"></script>`, WORKER, "shop-msk", false)).toBe(false);
    expect(pageHasSnippet(`<p>${WORKER}/s/shop-msk.js</p>`, WORKER, "shop-msk", false)).toBe(false);
    expect(pageHasSnippet(`<script src="${WORKER}/snippet.js"></script>`, WORKER, "shop-msk", false)).toBe(false);
    expect(pageHasSnippet(`<script src="${WORKER}/snippet.js"></script>`, WORKER, "default", true)).toBe(true);
  });
});

describe("the notification body the page shows", () => {
  it("is the template the docs ship", () => {
    expect(NOTIFICATION_BODY).toBe(template);
  });
});
