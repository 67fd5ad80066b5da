// Staff login: an owner made on the command line logs in with the one-time link, sets a
// password, logs out, fails with a wrong password, and logs in with the right one.

import { test } from "node:test";
import assert from "node:assert/strict";
import { shared, kopilka, browser, newPage, shot } from "../lib.mjs";

test("an owner logs in with the link, sets a password and logs in again", async () => {
  const server = shared();
  const email = `owner-${Date.now()}@e2e.test`;
  const out = JSON.parse(kopilka(server, ["tenant", "create", "--name", "E2E Login Shop", "--template", "cafe", "--owner-email", email, "--json"]));
  assert.match(out.login_url, /\/admin\/login\/link\/[0-9a-f]{64}$/);
  assert.match(out.api_key, /^kop_/);

  const b = await browser();
  try {
    const page = await newPage(b);
    await page.goto(out.login_url);
    await page.getByTestId("link-login").click();
    await page.waitForURL("**/admin/password");
    await page.fill("#password", "correct horse battery");
    await page.fill("#password2", "correct horse battery");
    await page.click("button[type=submit]");
    await page.waitForURL((u) => u.pathname === "/admin");
    assert.match(await page.getByTestId("who").innerText(), new RegExp(email.replace(/[.]/g, "\\.")));
    await shot(page, "admin-dashboard-first-login");

    // The link works once.
    await page.getByTestId("logout").click();
    await page.waitForURL("**/admin/login");
    await page.goto(out.login_url);
    await page.getByTestId("link-login").click();
    assert.equal(await page.locator(".error").count(), 1);

    await page.goto(`${server.url}/admin/login`);
    await page.fill("#email", email);
    await page.fill("#password", "not the password");
    await page.click("button[type=submit]");
    assert.equal(await page.getByTestId("login-error").count(), 1);
    await shot(page, "admin-login-error");

    await page.fill("#email", email);
    await page.fill("#password", "correct horse battery");
    await page.click("button[type=submit]");
    await page.waitForURL((u) => u.pathname === "/admin");
    assert.match(await page.getByTestId("who").innerText(), /owner/);
  } finally {
    await b.close();
  }
});
