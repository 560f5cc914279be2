import { Hono } from "hono";
import { escapeHtml } from "./bitrix/page";

const STYLE = `<style>body{font:15px system-ui;max-width:42rem;margin:2rem auto;padding:0 1rem}label{display:block;margin:.6rem 0}input,textarea{font:inherit;width:100%;padding:.3rem}button{font:inherit;padding:.4rem 1.2rem}td{padding:.2rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}</style>`;

/**
 * A stand-in customer website: CoMagic's tracking script (faked: its JS API appears after a short delay,
 * as the real one loads asynchronously), the snippet tag, and an ordinary form posting to the site's own
 * backend. The snippet adds the hidden fields and also sends the form to the worker.
 */
export function createDemoSite(workerUrl: string) {
  const app = new Hono();
  // ?portal=<key>: the shop of a stored portal, with that portal's tag (/s/<key>.js) as its settings page gives it.
  app.get("/demo", (c) => {
    const portal = /^[a-z0-9][a-z0-9-]{1,39}$/.exec(c.req.query("portal") ?? "")?.[0];
    const snippet = `${workerUrl}${portal ? `/s/${portal}.js` : "/snippet.js"}`;
    return c.html(`<!doctype html><html><head><meta charset="utf-8"><title>Demo shop: sofas</title>${STYLE}
<script>
  setTimeout(function () {
    var visitor = Number(localStorage.getItem("demo_visitor")) || Math.floor(1e7 + Math.random() * 9e7);
    localStorage.setItem("demo_visitor", String(visitor));
    window.Comagic = {
      getVisitorId: function () { return visitor; },
      getSessionId: function () { return 500000 + (visitor % 1000); },
      getCredentials: function () { return { visitor_id: visitor, session_id: 500000 + (visitor % 1000) }; }
    };
  }, 700);
</script>
<script src="${escapeHtml(snippet)}" data-forms="form" async></script>
</head><body>
<h1>Demo shop: sofas</h1>
<p>This page plays a customer's website. Open it with UTM tags (as from an ad), fill the form and send it:
the snippet adds the CoMagic visitor id and UTMs, the site's own backend gets them, and the worker makes a
Bitrix24 lead you can see in the <a href="/_sandbox" target="_blank">sandbox</a>.</p>
<form name="Callback request" action="/demo/thanks" method="post" data-comagic-send>
  <label>Name <input name="name" value="Demo Client"></label>
  <label>Phone <input name="phone" value="+7 912 000-00-00"></label>
  <label>Email <input name="email" type="email"></label>
  <label>Message <textarea name="message">Please call me back about the green sofa</textarea></label>
  <input name="_hp" tabindex="-1" autocomplete="off" style="position:absolute;left:-9999px" aria-hidden="true">
  <button>Send</button>
</form></body></html>`);
  });
  app.post("/demo/thanks", async (c) => {
    const fields = await c.req.parseBody();
    const rows = Object.entries(fields)
      .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`)
      .join("");
    return c.html(`<!doctype html><meta charset="utf-8"><title>Thanks</title>${STYLE}<h1>Thank you!</h1>
<p>The site's own backend received these fields (the hidden ones came from the snippet):</p><table>${rows}</table>
<p>The lead: <a href="/_sandbox">Bitrix24 sandbox</a> · <a href="/demo">back to the form</a></p>`);
  });
  return app;
}
