// Switching language: the browser's Accept-Language picks Russian, the switch changes it,
// and the choice sticks across pages and logins; money and dates follow.

import { test } from "node:test";
import assert from "node:assert/strict";
import { shared, kopilka, browser, newPage, shot } from "../lib.mjs";

test("language follows the browser and the switch", async () => {
  const server = shared();
  const email = `lang-${Date.now()}@e2e.test`;
  const out = JSON.parse(kopilka(server, ["tenant", "create", "--name", "Язык и деньги", "--template", "retail", "--owner-email", email, "--json"]));
  const b = await browser();
  try {
    const page = await newPage(b, { locale: "ru-RU" });
    await page.goto(out.login_url);
    assert.equal(await page.locator("h1").innerText(), "Вход по ссылке");
    await page.getByTestId("link-login").click();
    await page.waitForURL("**/admin/password");
    await page.fill("#password", "пароль достаточной длины");
    await page.fill("#password2", "пароль достаточной длины");
    await page.click("button[type=submit]");
    await page.waitForURL((u) => u.pathname === "/admin");
    assert.equal(await page.locator("html").getAttribute("lang"), "ru");
    assert.equal(await page.locator("h1").innerText(), "Сводка");
    // Money in the Russian format: 0,00 ₽ with non-breaking spaces.
    assert.equal(await page.getByTestId("kpi-liability").innerText(), "0,00\u00a0₽");
    await shot(page, "admin-dashboard-ru");

    await page.getByTestId("lang-en").click();
    await page.waitForURL((u) => u.pathname === "/admin");
    assert.equal(await page.locator("h1").innerText(), "Dashboard");
    assert.equal(await page.getByTestId("kpi-liability").innerText(), "₽0.00");
    // The choice sticks on other pages.
    await page.goto(`${server.url}/admin/programme`);
    assert.equal(await page.locator("h1").innerText(), "Programme");
    await page.getByTestId("lang-ru").click();
    await page.waitForURL("**/admin/programme");
    assert.equal(await page.locator("h1").innerText(), "Программа");
    await shot(page, "admin-programme-ru");
  } finally {
    await b.close();
  }
});
