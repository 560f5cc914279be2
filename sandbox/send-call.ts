/**
 * `npm run send:call`: posts a signed sample call to the local worker and prints the lead it becomes.
 * `npm run send:call -- '<notification address>'`: posts it, as CoMagic would, to the address a portal's settings
 * page gives (`/webhooks/comagic/<key>?token=…`), and prints the worker's answer; the lead is on that portal.
 */
import { DEV, sandboxUrl, workerUrl } from "./dev-settings";
import { postSampleCall, sampleCall, waitForLeadOf } from "./sample-call";

const address = process.argv[2];
if (address) {
  const response = await fetch(address, { method: "POST", headers: { "content-type": "application/json" }, body: sampleCall(sandboxUrl).notification }).catch(() => null);
  if (!response) {
    console.error(`Nothing answers at ${new URL(address).origin}: start it first with \`npm start\`.`);
    process.exit(1);
  }
  console.log(`POST ${new URL(address).pathname} → ${response.status} ${await response.text()}`);
  process.exit(response.status === 202 ? 0 : 1);
}

const answer = await postSampleCall(workerUrl, sandboxUrl, DEV.webhookToken, DEV.webhookSecret);
if (!answer) {
  console.error(`Nothing answers on ${workerUrl}: start it first with \`npm start\`.`);
  process.exit(1);
}
console.log(`POST /webhooks/comagic → ${answer.status} ${JSON.stringify(answer.answer)}`);
if (answer.status !== 202 || !answer.id) process.exit(1);

const lead = await waitForLeadOf(sandboxUrl, answer.id);
if (!lead) {
  console.error("No lead appeared within 30 s; see the worker's log lines.");
  process.exit(1);
}
console.log(`Lead ${lead.ID} in the Bitrix24 sandbox (${sandboxUrl}/_sandbox):`);
const { TIMELINE_COMMENTS: _comments, ...fields } = lead;
console.log(JSON.stringify(Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null && v !== "")), null, 2));
