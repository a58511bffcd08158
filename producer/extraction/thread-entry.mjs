// The entry of an extraction thread (pool.ts). Node 20 applies `--import tsx` to the main thread only, so a
// worker thread cannot load TypeScript by itself, under `npm start`, systemd or vitest alike: it registers tsx's
// loader (a dependency) first, then loads the thread's code.
import { constants, setPriority } from "node:os";
import { register } from "tsx/esm/api";

// Parsing is background work: when it competes with the API's event loop for a core, the loop should win. On
// Linux a nice value is per thread, and setPriority() without a pid sets the calling thread's (elsewhere, the
// whole process's: so only on Linux). First thing, so that loading pdf.js and mammoth runs below the loop too.
if (process.platform === "linux") setPriority(constants.priority.PRIORITY_BELOW_NORMAL);
register();
await import("./thread.ts");
