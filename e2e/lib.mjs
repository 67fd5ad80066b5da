// Shared helpers of the end-to-end tests: the server under test, the browser, screenshots.
//
// scripts/e2e.sh builds the binary, starts one shared `kopilka serve` on a temporary
// SQLite database and sets:
//   E2E_BIN       the kopilka binary
//   E2E_BASE_URL  the shared server (http://127.0.0.1:PORT)
//   E2E_DB_URL    its database (sqlite:...), for `kopilka` commands against it
//   E2E_CHROMIUM  the Chromium executable
//   E2E_OUT       where screenshots go
// A test that needs an empty database (the first-run setup) starts its own server with
// startServer().

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";

export const BIN = process.env.E2E_BIN;
export const OUT = process.env.E2E_OUT || "target/e2e-screenshots";
export const SETUP_CODE = "e2e-setup-code";

if (!BIN || !process.env.E2E_CHROMIUM) {
  throw new Error("run the end-to-end tests through scripts/e2e.sh (E2E_BIN and E2E_CHROMIUM are not set)");
}

/// The shared server started by scripts/e2e.sh.
export function shared() {
  return { url: process.env.E2E_BASE_URL, db: process.env.E2E_DB_URL, stop: async () => {} };
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/// A private `kopilka serve` on a fresh SQLite database, with the first-run setup code
/// SETUP_CODE and any extra environment (e.g. KOPILKA_SMS_URL). Call stop() when done.
export async function startServer({ env: extra = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "kopilka-e2e-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const db = `sqlite:${join(dir, "kopilka.db")}`;
  const env = { ...process.env, KOPILKA_PUBLIC_URL: url, KOPILKA_SETUP_TOKEN: SETUP_CODE, KOPILKA_LOG: "warn", ...extra };
  const child = spawn(BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--database-url", db, "--no-worker"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (d) => { log += d; });
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (child.exitCode !== null) throw new Error(`kopilka serve exited: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    db,
    log: () => log,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
    },
  };
}

/// Run the kopilka binary (e.g. `tenant create ... --json`) against a server's database;
/// answers stdout.
export function kopilka(server, args) {
  return execFileSync(BIN, [...args, "--database-url", server.db], {
    env: { ...process.env, KOPILKA_PUBLIC_URL: server.url, KOPILKA_LOG: "warn" },
    encoding: "utf8",
  });
}

/// Headless Chromium with the flags the project uses everywhere, plus `args` (e.g. a
/// fake camera).
export async function browser({ args = [] } = {}) {
  return chromium.launch({
    executablePath: process.env.E2E_CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", ...args],
  });
}

/// A new page with a language preference (Accept-Language) and a desktop or phone size.
export async function newPage(b, { locale = "en-US", phone = false } = {}) {
  const ctx = await b.newContext({
    locale,
    viewport: phone ? { width: 360, height: 740 } : { width: 1280, height: 860 },
    deviceScaleFactor: 1,
  });
  return ctx.newPage();
}

/// Save a full-page screenshot as OUT/<name>.png.
export async function shot(page, name) {
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}
