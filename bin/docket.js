#!/usr/bin/env node
// `docket` (npx docket ...): runs the TypeScript CLI through tsx, a dependency, with no build step.
import { register } from "tsx/esm/api";

register();
await import("../tools/cli/main.ts");
