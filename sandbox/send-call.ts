/** `npm run send:call`: posts a signed sample call to the local worker and prints the lead it becomes. */
import { DEV, sandboxUrl, workerUrl } from "./dev-settings";
import { postSampleCall, waitForLeadOf } from "./sample-call";

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
