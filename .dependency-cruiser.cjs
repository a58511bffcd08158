/**
 * The layout's import rule, checked in CI (`npm run lint:deps`): imports run one way.
 *
 *   schema/ (contracts) <- runtime/ (logging, NATS, provisioning, service lifecycle, shared metric shapes)
 *     <- producer/ and worker/ (side by side, never importing each other)
 *       <- tools/ (CLI, launcher, benchmarks, soak, model tools)
 *
 * test/ may import anything; nothing imports test/. deploy/ holds no code.
 */
const room = (name, mayImport) => ({
  name: `${name}-imports-one-way`,
  comment: `${name}/ may import only ${mayImport.join(", ")} (docs/architecture.md)`,
  severity: "error",
  from: { path: `^${name}/` },
  to: { path: "^(schema|runtime|producer|worker|tools|test)/", pathNot: `^(${[name, ...mayImport].join("|")})/` },
});

module.exports = {
  forbidden: [
    room("schema", []),
    room("runtime", ["schema"]),
    room("producer", ["schema", "runtime"]),
    room("worker", ["schema", "runtime"]),
    room("tools", ["schema", "runtime", "producer", "worker"]),
    {
      name: "sql-only-in-stores",
      comment: "one owner per table: every query lives in producer/stores/ (db.ts opens and migrates); elsewhere, ask a store",
      severity: "error",
      from: { path: "^producer/", pathNot: "^producer/(stores/|db\\.ts$)" },
      to: { path: "node_modules/(drizzle-orm|better-sqlite3)/" },
    },
    {
      name: "no-circular",
      comment: "modules that import each other in a circle cannot be read or tested apart",
      severity: "error",
      from: { pathNot: "^node_modules" },
      to: { circular: true },
    },
    {
      name: "no-unresolvable",
      comment: "an import that resolves to nothing breaks at run time",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // TypeScript 7 has no compiler API for dependency-cruiser to use; swc parses the sources.
    parser: "swc",
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    // Packages that publish an exports map (hono/streaming, @nats-io/*) resolve through it, as Node does.
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types"],
    },
  },
};
