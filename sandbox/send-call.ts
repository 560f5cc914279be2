/** `npm run send:call`: posts a signed sample call to the local worker and prints the lead it becomes. */
import { DEV, sandboxUrl, workerUrl } from "./dev-settings";
import { sampleCallBody, signBody } from "./sample-call";

const body = JSON.stringify(sampleCallBody());
const response = await fetch(`${workerUrl}/webhooks/comagic?token=${DEV.webhookToken}`, {
  method: "POST",
  headers: { "content-type": "application/json", "x-comagic-signature": signBody(body, DEV.webhookSecret) },
  body,
}).catch(() => null);
if (!response) {
  console.error(`Nothing answers on ${workerUrl}: start it first with \`npm start\`.`);
  process.exit(1);
}
const answer = (await response.json()) as { status?: string; id?: string };
console.log(`POST /webhooks/comagic → ${response.status} ${JSON.stringify(answer)}`);
if (response.status !== 202 || !answer.id) process.exit(1);

for (let i = 0; i < 60; i++) {
  const leads = (await (await fetch(`${sandboxUrl}/_sandbox/leads`)).json()) as Record<string, unknown>[];
  const lead = leads.find((l) => l.UF_CRM_COMAGIC_ID === answer.id);
  if (lead) {
    console.log(`Lead ${lead.ID} in the Bitrix24 sandbox (${sandboxUrl}/_sandbox):`);
    const { TIMELINE_COMMENTS, ...fields } = lead;
    console.log(JSON.stringify(Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null && v !== "")), null, 2));
    process.exit(0);
  }
  await new Promise((r) => setTimeout(r, 500));
}
console.error("No lead appeared within 30 s; see the worker's log lines.");
process.exit(1);
