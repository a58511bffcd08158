/** Prints the webhook signing secret receivers verify with (DOCKET_WEBHOOK_SECRET, or the one stored in DOCKET_DB). */
import { openDatabase } from "../producer/db.ts";
import { webhookSecret } from "../producer/webhooks/signature.ts";
import { loadConfig } from "../schema/config.ts";

const config = loadConfig();
const database = openDatabase(config.DOCKET_DB);
try {
  process.stdout.write(`${webhookSecret(database.db, config.DOCKET_WEBHOOK_SECRET)}\n`);
} finally {
  database.close();
}
