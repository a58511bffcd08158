import { ensureDemoModel, TEST_MODEL } from "../tools/model/demo-model.ts";

// Workers need DOCKET_MODEL (the launcher sets it for `npm start`); tests run the generated tiny model.
process.env.DOCKET_MODEL ||= await ensureDemoModel(TEST_MODEL);
