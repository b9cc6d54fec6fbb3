// Node.js's globals for TypeScript programs in the sandbox (the runner image has tsc but
// no @types/node): enough for `require("fs").readFileSync(0, "utf8")`, `process.stdin`
// and the like to type-check. Compiled in with every program (core/src/languages.rs).
declare var require: any;
declare var module: any;
declare var exports: any;
declare var process: any;
declare var Buffer: any;
declare var __dirname: string;
declare var __filename: string;
