// Checks that the vendored QR code generator (static/vendor/qrcode.js, served to the manager's
// screen) is byte for byte the browser build of the npm package qrcode-generator pinned in
// package-lock.json, with its licence header, so `npm ci` reproduces it.
//
// Usage: node vendor.mjs [<base-url> <tokens.json> <artefact-dir>] (the arguments every browser
// script takes; this one reads files only)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const fail = (msg) => { console.error(`vendor: ${msg}`); process.exit(1); };

const lock = JSON.parse(readFileSync(path.join(here, "package-lock.json"), "utf8"));
const pinned = lock.packages?.["node_modules/qrcode-generator"]?.version;
if (!pinned) fail("qrcode-generator is not in package-lock.json");
// The package's "require" entry is its browser build, dist/qrcode.js.
const pkgDir = path.dirname(path.dirname(require.resolve("qrcode-generator")));
const pkg = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
if (pkg.version !== pinned) fail(`node_modules has qrcode-generator ${pkg.version}, the lock pins ${pinned}: run npm ci`);
if (pkg.license !== "MIT") fail(`qrcode-generator's licence is now ${pkg.license}`);

// The package's browser build: the script its README includes (a global `qrcode`).
const upstream = readFileSync(path.join(pkgDir, "dist", "qrcode.js"));
const vendored = readFileSync(path.join(here, "..", "..", "static", "vendor", "qrcode.js"));
if (!upstream.equals(vendored)) {
  fail(`static/vendor/qrcode.js differs from qrcode-generator ${pinned} dist/qrcode.js: copy it again, unmodified`);
}
const head = vendored.subarray(0, 600).toString("utf8");
for (const needed of ["Copyright (c) 2009 Kazuhiko Arase", "Licensed under the MIT license"]) {
  if (!head.includes(needed)) fail(`the vendored file lost its licence header (${needed})`);
}
console.log(`vendor ok: static/vendor/qrcode.js is qrcode-generator ${pinned} dist/qrcode.js, licence header kept`);
